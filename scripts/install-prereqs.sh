#!/usr/bin/env bash
# Installs what Tandem's tests, demo and benchmarks need, and only what is
# missing: MariaDB server and client, PostgreSQL, sysbench, HAProxy, Chromium,
# strace, a C toolchain, Rust, and the Python client libraries pymysql,
# mysql-connector-python and SQLAlchemy 2.x. Silent when everything is already there.
#
# Debian 12 (bookworm) or similar apt-based system. Runs as root directly, or
# through sudo otherwise (non-interactively when stdin is not a terminal).
#
# Usage: scripts/install-prereqs.sh        (also sourced by test.sh / demo.sh)
set -euo pipefail

prereq_log() { printf '%s: %s\n' "${PREREQ_NAME:-install-prereqs}" "$*" >&2; }

# Is a program available? Also looks in the sbin directories that a non-root
# PATH lacks on Debian (mariadbd and haproxy live in /usr/sbin).
prereq_have() {
    command -v "$1" >/dev/null 2>&1 || [[ -x /usr/sbin/$1 || -x /sbin/$1 || -x /usr/local/sbin/$1 ]]
}

prereq_have_pg_server() {
    local dir
    if prereq_have pg_config; then
        dir=$(pg_config --bindir 2>/dev/null || true)
        [[ -n $dir && -x $dir/initdb && -x $dir/postgres ]] && return 0
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x $dir/initdb && -x $dir/postgres ]] && return 0
    done
    return 1
}

prereq_as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        if [[ -t 0 ]]; then sudo "$@"; else sudo -n "$@"; fi
    else
        prereq_log "need root for: $*"
        prereq_log "run this script as root, or install sudo"
        return 1
    fi
}

PREREQ_APT_UPDATED=0
prereq_apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        prereq_log "missing packages: $* -- this is not an apt-based system; install them by hand"
        return 1
    fi
    prereq_log "installing: $*"
    local out
    out=$(mktemp)
    if [[ $PREREQ_APT_UPDATED -eq 0 ]]; then
        if ! prereq_as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >"$out" 2>&1; then
            cat "$out" >&2
            rm -f "$out"
            prereq_log "apt-get update failed"
            return 1
        fi
        PREREQ_APT_UPDATED=1
    fi
    if ! prereq_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends "$@" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        prereq_log "apt-get install $* failed"
        return 1
    fi
    rm -f "$out"
}

prereq_system_packages() {
    local -a pkgs=()
    if ! prereq_have mariadbd || ! prereq_have mariadb-install-db; then
        pkgs+=(mariadb-server)
    fi
    if ! prereq_have mariadb || ! prereq_have mysqldump; then
        pkgs+=(mariadb-client)
    fi
    if ! prereq_have_pg_server || ! prereq_have psql; then
        pkgs+=(postgresql)
    fi
    prereq_have sysbench || pkgs+=(sysbench)
    prereq_have haproxy || pkgs+=(haproxy)
    # Headless browser for the dashboard test (tests/cockpit.rs).
    prereq_have chromium || pkgs+=(chromium)
    prereq_have strace || pkgs+=(strace)
    # TLS tests make their CA and certificates with openssl and query the
    # admin endpoint over HTTPS with curl.
    prereq_have openssl || pkgs+=(openssl)
    prereq_have curl || pkgs+=(curl)
    # Linker for Rust, and a C compiler for crates that build C code (zlib).
    prereq_have cc || pkgs+=(gcc libc6-dev)
    # Rust is installed through rustup, which is fetched with curl.
    if ! prereq_have cargo && [[ ! -x ${CARGO_HOME:-$HOME/.cargo}/bin/cargo ]]; then
        prereq_have curl || pkgs+=(curl ca-certificates)
    fi
    prereq_have python3 || pkgs+=(python3)
    if [[ ${#pkgs[@]} -gt 0 ]]; then
        prereq_apt_install "${pkgs[@]}"
    fi
}

prereq_rust() {
    local cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin
    if ! prereq_have cargo && [[ -x $cargo_bin/cargo ]]; then
        export PATH="$cargo_bin:$PATH"
    fi
    prereq_have cargo && return 0
    prereq_log "installing the Rust toolchain with rustup (into ${CARGO_HOME:-$HOME/.cargo})"
    local out
    out=$(mktemp)
    if ! curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --no-modify-path >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        prereq_log "rustup installation failed; see https://rustup.rs"
        return 1
    fi
    rm -f "$out"
    export PATH="$cargo_bin:$PATH"
}

prereq_python_modules() {
    local -a missing=()
    python3 -c 'import pymysql' >/dev/null 2>&1 || missing+=(pymysql)
    python3 -c 'import mysql.connector' >/dev/null 2>&1 || missing+=(mysql-connector-python)
    python3 -c 'import sqlalchemy, sys; sys.exit(int(sqlalchemy.__version__.split(".")[0]) < 2)' \
        >/dev/null 2>&1 || missing+=('sqlalchemy>=2,<3')
    [[ ${#missing[@]} -eq 0 ]] && return 0

    if ! python3 -m pip --version >/dev/null 2>&1; then
        prereq_apt_install python3-pip
    fi
    prereq_log "pip installing: ${missing[*]}"
    local -a args=(install --quiet --disable-pip-version-check)
    # Inside a virtualenv, or with a pyenv/self-built Python, plain install.
    # Debian's own python3 refuses plain pip installs (PEP 668): install
    # beside the apt packages (root: /usr/local, others: ~/.local).
    local managed
    managed=$(python3 - <<'PY'
import os, sys, sysconfig
venv = sys.prefix != sys.base_prefix
marker = os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")
writable = os.access(sysconfig.get_path("purelib"), os.W_OK)
print("venv" if venv else ("managed" if os.path.exists(marker) else ("own" if writable else "user")))
PY
)
    case $managed in
        managed)
            args+=(--break-system-packages)
            [[ $(id -u) -eq 0 ]] || args+=(--user)
            ;;
        user) args+=(--user) ;;
    esac
    local out
    out=$(mktemp)
    if ! python3 -m pip "${args[@]}" "${missing[@]}" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        prereq_log "pip install ${missing[*]} failed"
        return 1
    fi
    rm -f "$out"
}

install_prereqs() {
    prereq_system_packages
    prereq_rust
    prereq_python_modules
}

# Executed (not sourced): do it.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    install_prereqs
fi
