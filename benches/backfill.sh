#!/usr/bin/env bash
# Backfill and verify throughput, MariaDB -> PostgreSQL, against pgloader on
# the same data in the same run. Run by hand (not in CI), as root or as a
# user who can start both servers:
#
#   benches/backfill.sh [ROWS]        # default 1000000
#
# Starts its own mariadbd and postgres in a temp dir on free ports, generates
# a ROWS-row table on MariaDB, creates the PostgreSQL schema with
# `tandem schema --apply`, then times:
#   1. tandem backfill             (into database dst)
#   2. tandem verify               (dst against the source)
#   3. pgloader, its default mode  (schema + data + indexes, database pgl)
#   4. pgloader, data only into the schema tandem created (database pgl_data)
# and prints rows/s for each and the ratios. Targets: backfill >= 1.5x
# pgloader rows/s; verify >= 300k rows/s.
#
# Environment: TANDEM (binary, default target/release/tandem, built if
# missing), KEEP=1 keeps the temp dir, BACKFILL_ARGS / VERIFY_ARGS add flags.
set -euo pipefail

ROWS=${1:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TANDEM=${TANDEM:-${CARGO_TARGET_DIR:-$ROOT/target}/release/tandem}
BACKFILL_ARGS=${BACKFILL_ARGS:-}
VERIFY_ARGS=${VERIFY_ARGS:-}

need() { command -v "$1" >/dev/null 2>&1 || { echo "missing $1: $2" >&2; exit 1; }; }
need mariadbd "apt-get install mariadb-server"
need mariadb "apt-get install mariadb-client"
need python3 "apt-get install python3"
if ! command -v pgloader >/dev/null 2>&1; then
    echo "pgloader not found; installing it (apt-get install pgloader)" >&2
    apt-get install -y pgloader >/dev/null
fi
PGBIN=$(pg_config --bindir 2>/dev/null || true)
[ -x "$PGBIN/initdb" ] || PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] || { echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }
if [ ! -x "$TANDEM" ]; then
    (cd "$ROOT" && cargo build --release --bin tandem)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{$1/($3-$2):,.0f}')"; }
secs() { python3 -c "print(f'{$2-$1:.2f}')"; }

DIR=$(mktemp -d /tmp/tandem-bench.XXXXXX)
chmod 755 "$DIR"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] && echo "kept $DIR" >&2 || rm -rf "$DIR"
}
trap cleanup EXIT

# shellcheck source=scripts/lib/servers.sh
. "$ROOT/scripts/lib/servers.sh"
echo "== starting MariaDB and PostgreSQL in $DIR"
start_mariadb "$DIR" --innodb-buffer-pool-size=512M --innodb-log-file-size=256M || exit 1
start_postgres "$DIR" shared_buffers=256MB max_wal_size=4GB || exit 1
MYPORT=$MY_PORT
PGPORT=$PG_PORT
my() { my_root --default-character-set=utf8mb4 "$@"; }
pg() { pg_admin "$@"; }

my -e "CREATE USER app@'%' IDENTIFIED BY 'apppass'; GRANT ALL ON *.* TO app@'%'; CREATE DATABASE src;"
pg -c "CREATE ROLE app LOGIN SUPERUSER PASSWORD 'apppass'" postgres
for db in dst pgl pgl_data; do pg -c "CREATE DATABASE $db OWNER app" postgres; done

echo "== generating $ROWS rows on MariaDB"
t0=$(now)
my src -e "
CREATE TABLE bench (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id INT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  score DOUBLE,
  name VARCHAR(64) NOT NULL,
  note VARCHAR(255),
  created DATETIME(6) NOT NULL,
  active TINYINT(1) NOT NULL,
  day DATE,
  KEY (customer_id)
) ENGINE=InnoDB;
INSERT INTO bench (customer_id, amount, score, name, note, created, active, day)
SELECT seq % 50000, (seq % 100000) / 100, IF(seq % 10 = 0, NULL, seq / 7),
       CONCAT('customer ', seq % 50000, ' é'), IF(seq % 3 = 0, NULL, REPEAT(SUBSTR(MD5(seq), 1, 16), 1 + seq % 4)),
       '2020-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL seq % 1000000 MICROSECOND, seq % 2,
       '2000-01-01' + INTERVAL seq % 9000 DAY
FROM seq_1_to_$ROWS;
ANALYZE TABLE bench;" >/dev/null
echo "generated in $(secs "$t0" "$(now)") s"

cat >"$DIR/proxy.toml" <<EOF
[[users]]
name = "app"
password = "x"
[backends.old]
kind = "mysql"
url = "mysql://app:apppass@127.0.0.1:$MYPORT/src"
[backends.new]
kind = "postgres"
url = "postgres://app:apppass@127.0.0.1:$PGPORT/dst"
EOF
sed "s#/dst\"#/pgl_data\"#" "$DIR/proxy.toml" >"$DIR/proxy-pgl.toml"

echo "== tandem schema --apply"
"$TANDEM" schema --apply --config "$DIR/proxy.toml"
"$TANDEM" schema --apply --config "$DIR/proxy-pgl.toml" >/dev/null

echo "== tandem backfill"
t0=$(now)
# shellcheck disable=SC2086
"$TANDEM" backfill --config "$DIR/proxy.toml" $BACKFILL_ARGS
t1=$(now)
BACKFILL_S=$(secs "$t0" "$t1")
BACKFILL_RATE=$(rate "$ROWS" "$t0" "$t1")

echo "== tandem verify"
t0=$(now)
# shellcheck disable=SC2086
"$TANDEM" verify --config "$DIR/proxy.toml" $VERIFY_ARGS
t1=$(now)
VERIFY_S=$(secs "$t0" "$t1")
VERIFY_RATE=$(rate "$ROWS" "$t0" "$t1")

echo "== pgloader (default: create tables, data, indexes)"
t0=$(now)
pgloader --quiet "mysql://app:apppass@127.0.0.1:$MYPORT/src" \
    "postgresql://app:apppass@127.0.0.1:$PGPORT/pgl" >"$DIR/pgloader.log" 2>&1 \
    || { cat "$DIR/pgloader.log"; exit 1; }
t1=$(now)
PGL_S=$(secs "$t0" "$t1")
PGL_RATE=$(rate "$ROWS" "$t0" "$t1")
PGL_ROWS=$(pg -t -A -c "SELECT count(*) FROM src.bench" pgl)

echo "== pgloader (data only, into the schema tandem created)"
cat >"$DIR/data-only.load" <<EOF
LOAD DATABASE
  FROM mysql://app:apppass@127.0.0.1:$MYPORT/src
  INTO postgresql://app:apppass@127.0.0.1:$PGPORT/pgl_data
  WITH data only, truncate
  ALTER SCHEMA 'src' RENAME TO 'public';
EOF
t0=$(now)
pgloader --quiet "$DIR/data-only.load" >"$DIR/pgloader-data.log" 2>&1 || { cat "$DIR/pgloader-data.log"; exit 1; }
t1=$(now)
PGLD_S=$(secs "$t0" "$t1")
PGLD_RATE=$(rate "$ROWS" "$t0" "$t1")
PGLD_ROWS=$(pg -t -A -c "SELECT count(*) FROM public.bench" pgl_data)
DST_ROWS=$(pg -t -A -c "SELECT count(*) FROM public.bench" dst)

echo
echo "== results ($ROWS rows, $(nproc) cores, $(mariadbd --version | awk '{print $3}'), $("$PGBIN/postgres" --version))"
printf '%-40s %10s s %14s rows/s  (%s rows)\n' \
    "tandem backfill" "$BACKFILL_S" "$BACKFILL_RATE" "$DST_ROWS" \
    "tandem verify" "$VERIFY_S" "$VERIFY_RATE" "$ROWS" \
    "pgloader (schema+data+indexes)" "$PGL_S" "$PGL_RATE" "$PGL_ROWS" \
    "pgloader (data only)" "$PGLD_S" "$PGLD_RATE" "$PGLD_ROWS"
python3 - "$BACKFILL_S" "$PGL_S" "$PGLD_S" "$VERIFY_S" "$ROWS" <<'EOF'
import sys
b, p, pd, v, rows = map(float, sys.argv[1:])
print(f"backfill / pgloader (default):   {p / b:.2f}x   (target >= 1.5x)")
print(f"backfill / pgloader (data only): {pd / b:.2f}x")
print(f"verify: {rows / v:,.0f} rows/s (target >= 300,000)")
EOF
