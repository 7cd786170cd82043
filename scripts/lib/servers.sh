# Throwaway MariaDB and PostgreSQL servers for the benchmarks (scripts/demo.sh
# shares the program lookup): one of each,
# from the system packages, in a work directory, on free loopback ports, set
# up as production runs them (MariaDB with a row-format binlog). Sourced, not
# run; the caller owns the work directory and the `pids` array, and kills the
# pids in its EXIT trap.
#
#   source "$repo/scripts/lib/servers.sh"
#   pids=()
#   start_mariadb "$work" [extra mariadbd args...]   # sets MY_PORT, MY_SOCK
#   start_postgres "$work" [extra postgres -c args...]  # sets PG_PORT, PG_SOCK
#   my_root -e 'SELECT 1'                            # mariadb client as root
#   pg_admin -d postgres -c 'SELECT 1'              # psql as postgres
#   create_app_accounts USER PASSWORD [pg_database...]
#
# Durability is off on both (benchmarks measure the proxy, not fsync).

# A free TCP port on 127.0.0.1 (the kernel's choice; closed before use, so a
# race with another process is possible but harmless for a benchmark).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

servers_find() {
    local dir
    command -v "$1" 2>/dev/null && return 0
    for dir in /usr/sbin /usr/local/sbin /sbin; do
        [[ -x $dir/$1 ]] && { printf '%s\n' "$dir/$1"; return 0; }
    done
    printf 'servers.sh: cannot find %s\n' "$1" >&2
    return 1
}

# The newest PostgreSQL bin directory with initdb and pg_ctl (the demo
# stops its server with pg_ctl).
servers_pg_bindir() {
    local dir best=
    dir=$(pg_config --bindir 2>/dev/null || true)
    if [[ -n $dir && -x $dir/initdb && -x $dir/pg_ctl ]]; then printf '%s\n' "$dir"; return 0; fi
    for dir in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V); do
        [[ -x $dir/initdb && -x $dir/pg_ctl ]] && best=$dir
    done
    [[ -n $best ]] || { echo "servers.sh: PostgreSQL server binaries not found" >&2; return 1; }
    printf '%s\n' "$best"
}

# Waits up to 60 s for COMMAND to succeed while PID lives; prints LOG on failure.
servers_wait() {
    local pid=$1 log=$2 i
    shift 2
    for ((i = 0; i < 600; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 30 "$log" >&2 || true
    echo "servers.sh: server did not start (log: $log)" >&2
    return 1
}

my_root() { "$(servers_find mariadb)" --no-defaults --socket="$MY_SOCK" -uroot "$@"; }

start_mariadb() {
    local work=$1
    shift
    local root_args=()
    [[ $(id -u) -eq 0 ]] && root_args=(--user=root)
    MY_PORT=$(free_port)
    MY_SOCK=$work/mysqld.sock
    "$(servers_find mariadb-install-db)" --no-defaults "${root_args[@]}" --datadir="$work/mysql" \
        --auth-root-authentication-method=normal --skip-test-db >"$work/mariadb-install.log" 2>&1 || {
        echo "servers.sh: mariadb-install-db failed; see $work/mariadb-install.log" >&2
        return 1
    }
    setsid "$(servers_find mariadbd)" --no-defaults "${root_args[@]}" --datadir="$work/mysql" \
        --socket="$MY_SOCK" --port="$MY_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --log-bin=mariadb-bin --binlog-format=ROW --binlog-row-image=FULL \
        --binlog-row-metadata=FULL --server-id=1 \
        --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
        --max-connections=500 --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        --log-error="$work/mariadb.log" "$@" </dev/null >/dev/null 2>&1 &
    pids+=($!)
    servers_wait "$!" "$work/mariadb.log" my_root -e 'SELECT 1'
}

pg_admin() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$PG_PORT" -U postgres "$@"; }

start_postgres() {
    local work=$1
    shift
    local bin extra=() run_pg=() arg
    bin=$(servers_pg_bindir) || return 1
    for arg in "$@"; do extra+=(-c "$arg"); done
    PG_PORT=$(free_port)
    PG_SOCK=$work/pg
    mkdir -p "$work/pg"
    # PostgreSQL refuses to run as root.
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$work/pg"
        run_pg=(runuser -u postgres --)
    fi
    "${run_pg[@]}" "$bin/initdb" -D "$work/pg/data" -U postgres --auth=trust --no-sync -E UTF8 \
        --no-locale >"$work/initdb.log" 2>&1 || {
        echo "servers.sh: initdb failed; see $work/initdb.log" >&2
        return 1
    }
    setsid "${run_pg[@]}" "$bin/postgres" -D "$work/pg/data" -p "$PG_PORT" -k "$PG_SOCK" \
        -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=300 -c wal_level=logical "${extra[@]}" \
        </dev/null >"$work/postgres.log" 2>&1 &
    pids+=($!)
    servers_wait "$!" "$work/postgres.log" pg_admin -d postgres -c 'SELECT 1' || return 1
    # runuser may not pass a signal on: the caller kills the postmaster too.
    pids+=("$(head -n1 "$work/pg/data/postmaster.pid")")
}

# USER with PASSWORD on both servers: everything on MariaDB (replication
# included, for the change stream), a superuser on PostgreSQL owning each
# named database (created).
create_app_accounts() {
    local user=$1 password=$2 db
    shift 2
    my_root <<SQL
CREATE USER '$user'@'%' IDENTIFIED BY '$password';
CREATE USER '$user'@'localhost' IDENTIFIED BY '$password';
GRANT ALL ON *.* TO '$user'@'%';
GRANT ALL ON *.* TO '$user'@'localhost';
SQL
    pg_admin -d postgres -c "CREATE ROLE $user LOGIN SUPERUSER PASSWORD '$password'"
    for db in "$@"; do
        pg_admin -d postgres -c "CREATE DATABASE $db OWNER $user"
    done
}
