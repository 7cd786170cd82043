# The start every benchmark script shares: messages, prerequisites, the proxy
# binary, a work directory and the cleanup of what the script started.
# Sourced, not run, after `set -euo pipefail`:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/bench.sh"
#   bench_init NAME        # sets repo, tandem, work; defines say/die; pids=()
#
# `tandem` is TANDEM_BIN when set, else a fresh `cargo build --release`.
# Every pid the script appends to `pids` is stopped on exit (TERM, then KILL
# a second later); the work directory is removed unless KEEP is set.

bench_init() {
    BENCH_NAME=$1
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    say() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }
    die() {
        say "$*"
        exit 1
    }
    PREREQ_NAME=$BENCH_NAME
    # shellcheck source=scripts/install-prereqs.sh
    source "$repo/scripts/install-prereqs.sh"
    install_prereqs
    if [[ -n ${TANDEM_BIN:-} ]]; then
        tandem=$TANDEM_BIN
        say "measuring TANDEM_BIN=$tandem"
    else
        say "building tandem (cargo build --release)"
        (cd "$repo" && cargo build --release --quiet)
        tandem=${CARGO_TARGET_DIR:-$repo/target}/release/tandem
    fi
    [[ -x $tandem ]] || die "cannot run $tandem"
    work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-$BENCH_NAME-XXXXXX")
    # The postgres account reads its data directory below this one.
    chmod 755 "$work"
    pids=()
    trap bench_cleanup EXIT
}

bench_cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    # Reap them quietly (bash would report each killed job).
    wait 2>/dev/null || true
    if [[ -n ${KEEP:-} ]]; then say "kept $work"; else rm -rf "$work"; fi
}
