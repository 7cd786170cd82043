#!/usr/bin/env bash
# Try Tandem locally: starts MariaDB on 127.0.0.1:3306 (the "old" backend,
# with a small demo shop schema) and PostgreSQL on 127.0.0.1:5432 (the "new"
# backend, empty), both from the system packages with their data under
# ./.demo/, then runs the proxy on 127.0.0.1:3307 with ./proxy.toml.
# Ctrl-C stops the proxy and both servers. A second run reuses the data;
# `rm -rf .demo` starts over.
#
# Usage: scripts/demo.sh          set up and run the proxy
#        scripts/demo.sh stop     stop servers left running (see below)
#
# Environment:
#   APP_PASSWORD  password of user `app` at the proxy         (default: app)
#   OLD_PASSWORD  password of user `app` on MariaDB           (default: app)
#   NEW_PASSWORD  password of user `app` on PostgreSQL        (default: app)
#   TANDEM_DEMO_NO_PROXY=1  only set up the servers, leave them running and
#                           exit (stop them with `scripts/demo.sh stop`)
set -euo pipefail

readonly MARIADB_PORT=3306 PG_PORT=5432 PROXY_PORT=3307

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
demo=$repo/.demo
mdir=$demo/mariadb
pgdir=$demo/postgres
me=$(id -un)

export APP_PASSWORD=${APP_PASSWORD:-app}
export OLD_PASSWORD=${OLD_PASSWORD:-app}
export NEW_PASSWORD=${NEW_PASSWORD:-app}

say() { printf 'demo: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

# Something accepts TCP connections on 127.0.0.1:PORT.
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# PID from a pid file if that process is alive and its command line mentions
# WORD (guards against a recycled pid).
live_pid() {
    local file=$1 word=$2 pid
    [[ -r $file ]] || return 1
    pid=$(head -n1 "$file" 2>/dev/null | tr -dc '0-9')
    [[ -n $pid ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$word" || return 1
    printf '%s\n' "$pid"
}

# Program lookup is shared with the benchmarks (scripts/lib/servers.sh).
# The servers themselves are started here, not by servers.sh: the demo's
# are persistent (data kept under .demo/ and reused by the next run, fixed
# ports, durability on, password logins over TCP, `demo.sh stop`), where
# servers.sh starts throwaway ones on free ports for one benchmark run.
# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"

find_program() { servers_find "$1" || die "cannot find $1"; }

pg_bindir() {
    servers_pg_bindir || die "PostgreSQL server binaries not found (is the postgresql package installed?)"
}

# SQL string literal body (MariaDB and PostgreSQL with standard strings).
sql_quote() {
    local s=${1//\\/\\\\}
    printf '%s' "${s//\'/\'\'}"
}

# PostgreSQL refuses to run as root: use the `postgres` system account then.
pg_user=""
if [[ $(id -u) -eq 0 ]]; then
    pg_user=postgres
fi
as_pg() {
    if [[ -n $pg_user ]]; then
        runuser -u "$pg_user" -- "$@"
    else
        "$@"
    fi
}

mariadb_admin_sql() {
    "$(find_program mariadb)" --defaults-file="$mdir/my.cnf" -u "$me" --batch --skip-column-names "$@"
}

psql_admin() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$pg_sock" -p "$PG_PORT" -U postgres "$@"
}

# ---------------------------------------------------------------------------
# stop

stop_mariadb() {
    local pid i
    pid=$(live_pid "$mdir/mariadbd.pid" mariadbd) || return 0
    say "stopping MariaDB (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 600; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    say "MariaDB did not stop within 60 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
}

stop_postgres() {
    local data
    data=$(readlink -f "$pgdir")/data
    live_pid "$data/postmaster.pid" postgres >/dev/null || return 0
    say "stopping PostgreSQL"
    as_pg "$(pg_bindir)/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null ||
        say "pg_ctl stop failed; see $pgdir/postgres.log"
}

stop_all() {
    stop_mariadb
    stop_postgres
}

if [[ ${1:-} == stop ]]; then
    stop_all
    exit 0
elif [[ $# -gt 0 ]]; then
    die "unknown argument: $1 (usage: scripts/demo.sh [stop])"
fi

# ---------------------------------------------------------------------------
# prerequisites and build

PREREQ_NAME=demo
# shellcheck source=scripts/install-prereqs.sh
source "$repo/scripts/install-prereqs.sh"
install_prereqs

no_proxy=${TANDEM_DEMO_NO_PROXY:-}
if [[ -z $no_proxy ]]; then
    say "building tandem (cargo build --release)"
    (cd "$repo" && cargo build --release --quiet)
fi

# ---------------------------------------------------------------------------
# ports: ours from a previous run are reused, anyone else's is an error

mkdir -p "$mdir" "$pgdir"

mariadb_running=""
if live_pid "$mdir/mariadbd.pid" mariadbd >/dev/null; then
    mariadb_running=1
elif port_busy "$MARIADB_PORT"; then
    die "port $MARIADB_PORT is already in use, probably by another MySQL/MariaDB server
      (the mariadb-server package starts one: stop it with 'sudo service mariadb stop').
      The demo needs 127.0.0.1:$MARIADB_PORT free."
fi

# The postgres account must be able to reach .demo/postgres; a repository
# under a private home directory (e.g. /root) is out of its reach, so the
# cluster then lives in /var/tmp with a symlink from .demo/postgres.
if [[ -n $pg_user ]]; then
    id "$pg_user" >/dev/null 2>&1 || die "user $pg_user does not exist (is postgresql installed?)"
    chown "$pg_user" "$pgdir"
    if ! runuser -u "$pg_user" -- test -w "$pgdir/."; then
        outside=/var/tmp/tandem-demo-postgres-$(printf '%s' "$repo" | cksum | cut -d' ' -f1)
        say "user $pg_user cannot reach $pgdir; keeping the PostgreSQL cluster in $outside"
        mkdir -p "$outside"
        chown "$pg_user" "$outside"
        rmdir "$pgdir" 2>/dev/null || rm -f "$pgdir"
        ln -sfn "$outside" "$pgdir"
    fi
fi
pg_real=$(readlink -f "$pgdir")
pg_sock=$pg_real

postgres_running=""
if live_pid "$pg_real/data/postmaster.pid" postgres >/dev/null; then
    postgres_running=1
elif port_busy "$PG_PORT"; then
    die "port $PG_PORT is already in use, probably by another PostgreSQL server
      (the postgresql package starts one: stop it with 'sudo service postgresql stop').
      The demo needs 127.0.0.1:$PG_PORT free."
fi

if port_busy "$PROXY_PORT" && [[ -z $no_proxy ]]; then
    die "port $PROXY_PORT (the proxy's listen address in proxy.toml) is already in use"
fi

# From here on, a failure or Ctrl-C stops what we started.
trap 'stop_all' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# MariaDB

if [[ ! -d $mdir/data/mysql ]]; then
    say "initialising MariaDB in $mdir/data"
    rm -rf "$mdir/data"
    args=(--no-defaults --datadir="$mdir/data" --skip-test-db --skip-name-resolve
        --auth-root-authentication-method=socket --auth-root-socket-user="$me")
    [[ $(id -u) -eq 0 ]] && args+=(--user=root)
    "$(find_program mariadb-install-db)" "${args[@]}" >"$mdir/install.log" 2>&1 ||
        die "mariadb-install-db failed; see $mdir/install.log"
fi

# mariadbd refuses to run as root unless told to.
user_line=""
if [[ $(id -u) -eq 0 ]]; then
    user_line="user = root"
fi
cat >"$mdir/my.cnf" <<EOF
# Generated by scripts/demo.sh
[client]
socket = $mdir/mysqld.sock

[mariadbd]
$user_line
datadir = $mdir/data
socket = $mdir/mysqld.sock
pid-file = $mdir/mariadbd.pid
log-error = $mdir/error.log
port = $MARIADB_PORT
bind-address = 127.0.0.1
skip-name-resolve
# A row-format binlog, as production runs it: the change stream reads it.
log-bin = mariadb-bin
binlog-format = ROW
binlog-row-image = FULL
binlog-row-metadata = FULL
server-id = 1
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
innodb-buffer-pool-size = 128M
max-connections = 300
EOF

if [[ -z $mariadb_running ]]; then
    say "starting MariaDB on 127.0.0.1:$MARIADB_PORT (log: $mdir/error.log)"
    setsid "$(find_program mariadbd)" --defaults-file="$mdir/my.cnf" </dev/null >>"$mdir/mariadbd.out" 2>&1 &
    ready=""
    for ((i = 0; i < 600; i++)); do
        if mariadb_admin_sql -e 'SELECT 1' >/dev/null 2>&1; then
            ready=1
            break
        fi
        kill -0 "$!" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z $ready ]]; then
        tail -n 20 "$mdir/error.log" >&2 || true
        die "MariaDB did not start; see $mdir/error.log"
    fi
else
    say "reusing the MariaDB already running on 127.0.0.1:$MARIADB_PORT"
fi

old_pw=$(sql_quote "$OLD_PASSWORD")
mariadb_admin_sql <<EOF
CREATE DATABASE IF NOT EXISTS app CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '$old_pw';
CREATE USER IF NOT EXISTS 'app'@'localhost' IDENTIFIED BY '$old_pw';
ALTER USER 'app'@'%' IDENTIFIED BY '$old_pw';
ALTER USER 'app'@'localhost' IDENTIFIED BY '$old_pw';
GRANT ALL PRIVILEGES ON app.* TO 'app'@'%';
GRANT ALL PRIVILEGES ON app.* TO 'app'@'localhost';
-- The change stream connects as a replica and reads binlog positions.
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'app'@'%';
GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'app'@'localhost';
EOF

if [[ -z $(mariadb_admin_sql -e "SELECT 1 FROM information_schema.tables WHERE table_schema = 'app' AND table_name = 'customers'") ]]; then
    say "loading scripts/demo-schema.sql into MariaDB database app"
    mariadb_admin_sql app <"$repo/scripts/demo-schema.sql"
fi

# ---------------------------------------------------------------------------
# PostgreSQL

pg_bin=$(pg_bindir)
if [[ ! -f $pg_real/data/PG_VERSION ]]; then
    say "initialising PostgreSQL in $pgdir/data"
    rm -rf "$pg_real/data"
    as_pg "$pg_bin/initdb" -D "$pg_real/data" -U postgres -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$pg_real/initdb.log" 2>&1 ||
        die "initdb failed; see $pgdir/initdb.log"
    sock_conf=${pg_sock//\'/\'\'}
    as_pg tee -a "$pg_real/data/postgresql.conf" >/dev/null <<EOF

# Added by scripts/demo.sh
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock_conf'
EOF
fi

# Logical decoding for the reverse stream (new_primary copies PostgreSQL's
# commits back to MariaDB); a data directory from an older demo gets it too.
if [[ -z $postgres_running ]] && ! grep -q '^wal_level = logical' "$pg_real/data/postgresql.conf"; then
    printf '\n# Added by scripts/demo.sh: logical decoding for the reverse stream\nwal_level = logical\n' |
        as_pg tee -a "$pg_real/data/postgresql.conf" >/dev/null
fi

if [[ -z $postgres_running ]]; then
    say "starting PostgreSQL on 127.0.0.1:$PG_PORT (log: $pgdir/postgres.log)"
    (cd "$pg_real" && as_pg setsid "$pg_bin/pg_ctl" -D "$pg_real/data" -l "$pg_real/postgres.log" \
        -w -t 60 start >/dev/null) || {
        tail -n 20 "$pg_real/postgres.log" >&2 || true
        die "PostgreSQL did not start; see $pgdir/postgres.log"
    }
else
    say "reusing the PostgreSQL already running on 127.0.0.1:$PG_PORT"
fi

new_pw=$(sql_quote "$NEW_PASSWORD")
psql_admin -d postgres <<EOF >/dev/null
SELECT 'CREATE ROLE app LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app')
\gexec
ALTER ROLE app LOGIN REPLICATION PASSWORD '$new_pw';
SELECT 'CREATE DATABASE app OWNER app' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'app')
\gexec
EOF

# ---------------------------------------------------------------------------
# run

cat <<EOF

  MariaDB (old backend)     127.0.0.1:$MARIADB_PORT   database app, user app
  PostgreSQL (new backend)  127.0.0.1:$PG_PORT   database app, user app
  Tandem proxy              127.0.0.1:$PROXY_PORT   (config: proxy.toml)

  Connect through the proxy:
    mariadb -h127.0.0.1 -P$PROXY_PORT -uapp -p$APP_PASSWORD app
  e.g.  SELECT c.full_name, o.status, o.unit_price FROM orders o
        JOIN customers c ON c.id = o.customer_id LIMIT 5;

EOF

if [[ -n $no_proxy ]]; then
    trap - EXIT INT TERM
    say "TANDEM_DEMO_NO_PROXY is set: servers left running; stop them with 'scripts/demo.sh stop'"
    exit 0
fi

say "starting tandem; press Ctrl-C to stop the proxy and both servers"
cd "$repo"
# Not exec: the EXIT trap must still run to stop the servers afterwards.
status=0
"$repo/target/release/tandem" serve --config "$repo/proxy.toml" || status=$?
exit "$status"
