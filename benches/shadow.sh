#!/usr/bin/env bash
# Shadow-read cost (run by hand, not in CI): sysbench oltp_read_only through
# Tandem in dual_write (PostgreSQL as the new backend) with `[shadow]
# sample_percent = 0` and through a second Tandem with `sample_percent = 100`,
# interleaved and repeated in the same run, in front of the same MariaDB (old)
# and PostgreSQL (new), which hold the same data (`tandem schema --apply`
# then `tandem backfill`). Prints median client-visible TPS for each, the
# ratio (target >= 0.75), the `tandem_shadow_*` counters from the 100%
# proxy's /metrics, and the size of its mismatch log.
#
# sysbench runs with --skip_trx=on: reads inside an open transaction are
# never shadowed (they must see the session's own uncommitted writes), and
# oltp_read_only otherwise wraps every read in BEGIN/COMMIT. PS_MODE picks
# prepared statements (auto, the default) or the text protocol (disable);
# both are shadowed.
#
# Environment: DURATION [20] ROUNDS [3] THREADS [4] TABLE_SIZE [10000]
# SHADOW_WORKERS [2] PS_MODE [auto] KEEP=1
set -euo pipefail

DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
SHADOW_WORKERS=${SHADOW_WORKERS:-2}
PS_MODE=${PS_MODE:-auto}
DB_USER=app
DB_PASSWORD=bench

# shellcheck source=scripts/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/bench.sh"
bench_init shadow

read -r p1_port p2_port a1_port a2_port < <(python3 - <<'PY'
import socket
s = [socket.socket() for _ in range(4)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))
PY
)

# --- MariaDB (row-format binlog) and PostgreSQL: scripts/lib/servers.sh
# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"
start_mariadb "$work" || die "MariaDB did not start"
start_postgres "$work" || die "PostgreSQL did not start"
my_port=$MY_PORT pg_port=$PG_PORT
my_root -e "CREATE DATABASE sbtest"
create_app_accounts "$DB_USER" "$DB_PASSWORD" sbtest

# --- one proxy config per shadow sample rate, both dual_write in front of
# the same databases (the load is read-only, so they can share them).
config() { # name port admin sample_percent
    cat >"$work/$1.toml" <<TOML
listen = "127.0.0.1:$2"
phase = "dual_write"
[[users]]
name = "$DB_USER"
password = "$DB_PASSWORD"
[backends.old]
kind = "mysql"
url = "mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$my_port/sbtest"
[backends.new]
kind = "postgres"
url = "postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$pg_port/sbtest"
[mirror]
drift_log = "$work/$1-drift.jsonl"
[shadow]
sample_percent = $4
log = "$work/$1-mismatches.jsonl"
workers = $SHADOW_WORKERS
[admin]
listen = "127.0.0.1:$3"
[log]
level = "warn"
TOML
}
config shadow0 "$p1_port" "$a1_port" 0
config shadow100 "$p2_port" "$a2_port" 100

# --- sysbench data on MariaDB, then the same schema and rows on PostgreSQL
sb=(--db-driver=mysql --mysql-host=127.0.0.1 "--mysql-user=$DB_USER" "--mysql-password=$DB_PASSWORD"
    --tables=1 --table-size="$TABLE_SIZE" --mysql-db=sbtest)
sysbench oltp_read_only "${sb[@]}" --mysql-port="$my_port" prepare >"$work/prepare.log" 2>&1 ||
    die "sysbench prepare failed"
"$tandem" schema --config "$work/shadow0.toml" --apply >"$work/schema.log" 2>&1 ||
    { tail -5 "$work/schema.log" >&2; die "tandem schema --apply failed"; }
"$tandem" backfill --config "$work/shadow0.toml" >"$work/backfill.log" 2>&1 ||
    { tail -5 "$work/backfill.log" >&2; die "tandem backfill failed"; }
my_rows=$(mariadb --no-defaults --socket="$MY_SOCK" -uroot -N -B -e "SELECT COUNT(*) FROM sbtest.sbtest1")
pg_rows=$(psql -h "$work/pg" -p "$pg_port" -U postgres -d sbtest -At -c "SELECT COUNT(*) FROM sbtest1")
[[ $my_rows == "$pg_rows" ]] || die "backfill left $pg_rows rows on PostgreSQL, MariaDB has $my_rows"

# --- two proxies: shadow sample 0% and 100%
start() { # name port
    setsid "$tandem" serve --config "$work/$1.toml" </dev/null >"$work/$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 300); do mariadb --no-defaults -h127.0.0.1 -P"$2" -u$DB_USER -p$DB_PASSWORD -e 'SELECT 1' sbtest >/dev/null 2>&1 && return; sleep 0.1; done
    tail -5 "$work/$1.log" >&2
    die "$1 did not start"
}
start shadow0 "$p1_port"
start shadow100 "$p2_port"

proxy_pid() { pgrep -f "serve --config $work/$1.toml" | head -n1; }
my_pid=$(head -n1 "$work/mysql/"*.pid 2>/dev/null || pgrep -f "datadir=$work/mysql" | head -n1)
pg_master=$(head -n1 "$work/pg/data/postmaster.pid")
# CPU ticks (utime + stime) of: the proxy under test, mariadbd, and every
# PostgreSQL process, as "proxy mariadb postgres".
cpu_ticks() {
    python3 - "$1" "$my_pid" "$pg_master" <<'PY'
import os, sys
def ticks(pid):
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except OSError:
        return 0
proxy, my, master = sys.argv[1:4]
pg = [int(master)] + [int(p) for p in os.listdir("/proc") if p.isdigit() and
      open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1] == master]
print(ticks(proxy), ticks(my), sum(ticks(p) for p in pg))
PY
}

shadow_metrics() { curl -s "127.0.0.1:$a2_port/metrics" | grep '^tandem_shadow' || true; }

raw=$work/raw.tsv
: >"$raw"
for round in $(seq "$ROUNDS"); do
    for target in shadow0 shadow100; do
        port=$p1_port
        [[ $target == shadow100 ]] && port=$p2_port
        out=$work/run-$round-$target.log
        before=$(cpu_ticks "$(proxy_pid "$target")")
        sysbench oltp_read_only "${sb[@]}" --mysql-port="$port" --threads="$THREADS" --time="$DURATION" \
            --db-ps-mode="$PS_MODE" --skip_trx=on run >"$out" 2>&1 || { tail -5 "$out" >&2; die "sysbench failed ($target)"; }
        after=$(cpu_ticks "$(proxy_pid "$target")")
        tps=$(awk '/^ *transactions:/ { gsub(/\(/, ""); print $3 }' "$out")
        queries=$(awk '/^ *queries:/ { print $2; exit }' "$out")
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$target" "$tps" "$queries" "$before" "$after" >>"$raw"
        say "round $round $target: $tps tps"
    done
done

# Let the shadow workers finish what is queued: wait until the counters stop
# moving (at most 10 s).
prev=$(shadow_metrics)
for _ in $(seq 20); do
    sleep 0.5
    cur=$(shadow_metrics)
    [[ $cur == "$prev" ]] && break
    prev=$cur
done
metrics=$(shadow_metrics)
mismatch_log=$work/shadow100-mismatches.jsonl
mismatches=0
[[ -f $mismatch_log ]] && mismatches=$(wc -l <"$mismatch_log")

mkdir -p "$repo/benches/results"
result=$repo/benches/results/shadow-$(date +%Y-%m-%d-%H%M%S).txt
{
    echo "Tandem shadow-read benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$repo" rev-parse --short HEAD)"
    echo "sysbench oltp_read_only, $THREADS threads, ${DURATION}s x $ROUNDS rounds, table size $TABLE_SIZE,"
    echo "--db-ps-mode=$PS_MODE, autocommit reads (--skip_trx=on); dual_write, $SHADOW_WORKERS shadow workers;"
    echo "MariaDB (old) and PostgreSQL (new) on the same $(nproc)-CPU machine as sysbench and the proxies"
    python3 - "$raw" <<'PY'
import csv, os, statistics, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter="\t"))
med = lambda t: statistics.median(float(r[2]) for r in rows if r[1] == t)
a, b = med("shadow0"), med("shadow100")
print(f"shadow sample_percent = 0   TPS (median): {a:.1f}")
print(f"shadow sample_percent = 100 TPS (median): {b:.1f}")
print(f"ratio 100%/0%: {b / a:.2f}  (target >= 0.75)")
hz = os.sysconf("SC_CLK_TCK")
print("CPU seconds per run (median) and proxy CPU us per client statement:")
for t in ("shadow0", "shadow100"):
    runs = [r for r in rows if r[1] == t]
    d = [[(int(y) - int(x)) / hz for x, y in zip(r[4].split(), r[5].split())] for r in runs]
    med_i = lambda i: statistics.median(x[i] for x in d)
    us = statistics.median((int(r[5].split()[0]) - int(r[4].split()[0])) / hz * 1e6 / max(int(r[3]), 1) for r in runs)
    print(f"  {t:9}: proxy {med_i(0):.1f} s, mariadbd {med_i(1):.1f} s, postgres {med_i(2):.1f} s; proxy {us:.1f} us/stmt")
PY
    echo "shadow counters (sample_percent = 100 proxy, /metrics):"
    if [[ -n $metrics ]]; then awk '{ print "  " $0 }' <<<"$metrics"; else echo "  (no tandem_shadow lines)"; fi
    compared=$(awk '/^tandem_shadow_reads_total\{outcome="(match|mismatch|transient)"\}/ { n += $2 } END { print n + 0 }' <<<"$metrics")
    echo "sampled reads compared (match + mismatch + transient): $compared"
    [[ $compared -gt 0 ]] || echo "WARNING: no sampled read was compared; the 100% figure measures sampling and capture only"
    echo "mismatch log lines: $mismatches"
    if [[ $mismatches -gt 0 ]]; then
        echo "first mismatches:"
        head -n 3 "$mismatch_log"
    fi
} | tee "$result"
