#!/usr/bin/env bash
# Change stream benchmark (run by hand, not in CI): the mirror's cost and
# speed, side by side in one run, in front of the same MariaDB (row-format
# binlog) with PostgreSQL as the new backend:
#
#   primary_only               the baseline: the proxy only relays
#   primary_only + binlog reader  the baseline plus what any replica costs the
#                              primary: `mariadb-binlog --read-from-remote-server
#                              --raw --stop-never` reading the binlog as it grows
#                              (MariaDB's dump thread serves it as it serves the
#                              stream; the reader runs where the applier runs)
#   dual_write, statements     the statement mirror ([mirror] source = "statements")
#   dual_write, binlog serial  the change stream, apply_workers = 1
#   dual_write, binlog parallel  the change stream, apply_workers = $WORKERS
#
# For each: sysbench oltp_write_only and oltp_read_write through the proxy
# (THREADS threads, server-side prepared statements) → primary TPS and its
# ratio to primary_only (the issue's target for binlog: >= 0.95), and to
# primary_only + binlog reader when that mode ran; rows the
# stream applied per second during the run; the largest lag seen (sampled
# from /metrics every 0.5 s: tandem_stream_lag_seconds for the binlog; the
# statement mirror's own lag_max_us from /status). Then, for the binlog
# modes, catch-up: PostgreSQL is stopped (SIGSTOP) for 20 s while
# oltp_write_only keeps writing, then continues (SIGCONT); rows applied from its
# return until the stream reached the primary's position, per second.
# Each mode uses its own MariaDB and PostgreSQL databases and its own proxy,
# started only for its runs. In the binlog modes the applier runs as its own
# process (`tandem mirror`) and the proxy stands by (it loses the lease), so
# the two show up separately in the CPU figures.
#
# CPU: utime+stime from /proc/<pid>/stat before and after each run (until
# the stream caught up) of MariaDB (all threads, the binlog dump thread
# included), PostgreSQL (postmaster, its backends, and those that exited),
# the proxy and the applier, in µs per sysbench transaction and, for
# PostgreSQL and the applier, per row the stream applied.
#
# Every mode runs in two placements, printed side by side:
#   shared  everything on every CPU (the machine as it is)
#   pinned  MariaDB, sysbench and the proxy on CPU 0; PostgreSQL and
#           `tandem mirror` on CPU 1 (the model of "the new database is
#           another machine"; primary_only is pinned the same way, so the
#           ratios compare like with like). Needs 2 CPUs and taskset.
# Catch-up after an outage is measured in the shared placement only.
# Results: printed and benches/results/stream-<date>.txt.
#
# Environment: DURATION [20] THREADS [4] TABLE_SIZE [10000] WORKERS [4]
#              OUTAGE [20] (0: no outage/catch-up run)
#              PLACEMENTS ["shared pinned"]
#              MODES ["primary reader statements serial parallel"]
#              KEEP=1 (keep the work directory)
#              TANDEM_BIN (a built proxy; default: cargo build --release)
set -euo pipefail

DURATION=${DURATION:-20}
THREADS=${THREADS:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
WORKERS=${WORKERS:-4}
OUTAGE=${OUTAGE:-20}
read -r -a placements <<<"${PLACEMENTS:-shared pinned}"
read -r -a modes <<<"${MODES:-primary reader statements serial parallel}"
DB_USER=app
DB_PASSWORD=bench

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'stream: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

PREREQ_NAME=stream
# shellcheck source=scripts/install-prereqs.sh
source "$repo/scripts/install-prereqs.sh"
install_prereqs

if [[ -n ${TANDEM_BIN:-} ]]; then
    tandem=$TANDEM_BIN
else
    say "building tandem (cargo build --release)"
    (cd "$repo" && cargo build --release --quiet)
    tandem=${CARGO_TARGET_DIR:-$repo/target}/release/tandem
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-stream-XXXXXX")
chmod 755 "$work"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 1
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    [[ -n ${KEEP:-} ]] && say "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"
start_mariadb "$work" || die "MariaDB did not start"
start_postgres "$work" || die "PostgreSQL did not start"
my_port=$MY_PORT pg_port=$PG_PORT
my_pid=$(cat "$(my_root -N -B -e 'SELECT @@pid_file')")
pg_pid=$(head -n1 "$work/pg/data/postmaster.pid")
dbs=()
for placement in "${placements[@]}"; do
    for mode in "${modes[@]}"; do dbs+=("sb_${mode}_$placement"); done
done
create_app_accounts "$DB_USER" "$DB_PASSWORD" "${dbs[@]}"
pg() { psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$pg_port" -U postgres "$@"; }

sb=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user=$DB_USER --mysql-password=$DB_PASSWORD
    --tables=1 --table-size="$TABLE_SIZE")

# Fresh sysbench data in MariaDB database $1, copied to PostgreSQL database
# $1 (the stream starts at the primary's position: what exists before it is
# the backfill's job, done here by COPY).
prepare() { # database
    my_root -e "DROP DATABASE IF EXISTS $1; CREATE DATABASE $1"
    sysbench oltp_read_write "${sb[@]}" --mysql-db="$1" --mysql-port="$my_port" prepare >"$work/prepare-$1.log" 2>&1 ||
        die "sysbench prepare failed"
    pg -d "$1" <<SQL
DROP TABLE IF EXISTS sbtest1;
CREATE TABLE sbtest1 (id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, k integer NOT NULL DEFAULT 0,
  c char(120) NOT NULL DEFAULT '', pad char(60) NOT NULL DEFAULT '');
CREATE INDEX k_1 ON sbtest1 (k);
SQL
    my_root -N -B -e "SELECT id, k, c, pad FROM $1.sbtest1" | pg -d "$1" -c "COPY sbtest1 FROM STDIN"
    pg -d "$1" -c "SELECT setval(pg_get_serial_sequence('sbtest1', 'id'), $TABLE_SIZE + 1)" >/dev/null
}

# Placement: which CPUs each side may use (see the header). The servers
# were started before; their threads (and the backends PostgreSQL forks
# later) follow the affinity set here.
old_cpus=() new_cpus=()
place() { # placement
    local all
    all=0-$(($(nproc) - 1))
    if [[ $1 == pinned ]]; then
        old_cpus=(taskset -c 0) new_cpus=(taskset -c 1)
        taskset -a -p -c 0 "$my_pid" >/dev/null
        for pid in "$pg_pid" $(pgrep -P "$pg_pid"); do taskset -p -c 1 "$pid" >/dev/null; done
    else
        old_cpus=() new_cpus=()
        taskset -a -p -c "$all" "$my_pid" >/dev/null
        for pid in "$pg_pid" $(pgrep -P "$pg_pid"); do taskset -p -c "$all" "$pid" >/dev/null; done
    fi
}

proxy_pid= mirror_pid= reader_pid= admin= stream_admin=
write_config() { # mode database file listen admin
    local phase=dual_write source=binlog workers=1
    case $1 in
        primary | reader) phase=primary_only ;;
        statements) source=statements ;;
        parallel) workers=$WORKERS ;;
    esac
    cat >"$3" <<TOML
listen = "127.0.0.1:$4"
phase = "$phase"
[[users]]
name = "$DB_USER"
password = "$DB_PASSWORD"
[backends.old]
kind = "mysql"
url = "mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$my_port/$2"
[backends.new]
kind = "postgres"
url = "postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$pg_port/$2"
[mirror]
source = "$source"
apply_workers = $workers
server_id = $server_id
drift_log = "$work/$2-drift.jsonl"
max_backoff_ms = 500
[admin]
listen = "127.0.0.1:$5"
[log]
level = "warn"
TOML
}

# The proxy for MODE on database DB; in the binlog modes `tandem mirror`
# starts first and holds the lease (the proxy's own stream stands by).
start_proxy() { # mode database
    server_id=$((5000 + RANDOM % 1000))
    mirror_pid= reader_pid=
    if [[ $1 == reader ]]; then
        mkdir -p "$work/reader"
        (cd "$work/reader" && exec setsid "${new_cpus[@]}" mariadb-binlog --no-defaults --read-from-remote-server \
            --raw --stop-never --host=127.0.0.1 --port="$my_port" --user=$DB_USER --password=$DB_PASSWORD \
            "$(my_root -N -B -e 'SHOW MASTER STATUS' | awk '{ print $1 }')") </dev/null >"$work/reader.log" 2>&1 &
        reader_pid=$!
        pids+=("$reader_pid")
    fi
    if [[ $1 == serial || $1 == parallel ]]; then
        stream_admin=$(free_port)
        write_config "$1" "$2" "$work/$2-mirror.toml" "$(free_port)" "$stream_admin"
        setsid "${new_cpus[@]}" "$tandem" mirror --config "$work/$2-mirror.toml" </dev/null >"$work/$2-mirror.log" 2>&1 &
        mirror_pid=$!
        pids+=("$mirror_pid")
        admin=$stream_admin
        for _ in $(seq 600); do
            [[ $(status_field "stream.checkpoint") != None ]] && break
            sleep 0.1
        done
        [[ $(status_field "stream.checkpoint") != None ]] ||
            die "$1: the stream stored no checkpoint (see $work/$2-mirror.log)"
    fi
    port=$(free_port) admin=$(free_port)
    write_config "$1" "$2" "$work/$2.toml" "$port" "$admin"
    setsid "${old_cpus[@]}" "$tandem" serve --config "$work/$2.toml" </dev/null >"$work/$2.log" 2>&1 &
    proxy_pid=$!
    pids+=("$proxy_pid")
    for _ in $(seq 300); do
        mariadb --no-defaults -h127.0.0.1 -P"$port" -u$DB_USER -p$DB_PASSWORD -e 'SELECT 1' "$2" >/dev/null 2>&1 && break
        sleep 0.1
    done
    [[ -n $mirror_pid ]] || stream_admin=$admin
}

stop_proxy() {
    local pid
    for pid in "$proxy_pid" $mirror_pid $reader_pid; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}

status_field() { # dotted path into /status (of $admin)
    curl -s "127.0.0.1:$admin/status" | python3 -c '
import json, sys
try:
    v = json.load(sys.stdin)
except ValueError:  # not listening yet
    v = None
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print(v)' "$1"
}

metric() { # name → value of the stream's process (0 when absent)
    curl -s "127.0.0.1:$stream_admin/metrics" | awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }'
}

# CPU ticks (utime + stime) of one process, all its threads.
ticks() { # pid
    [[ -n $1 && -r /proc/$1/stat ]] || { echo 0; return; }
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# PostgreSQL: the postmaster, its live children, and those it reaped.
pg_ticks() {
    local t pid
    t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pg_pid/stat")
    for pid in $(pgrep -P "$pg_pid"); do t=$((t + $(ticks "$pid"))); done
    echo "$t"
}

# "mariadb postgres proxy applier" ticks now.
cpu_now() { echo "$(ticks "$my_pid") $(pg_ticks) $(ticks "$proxy_pid") $(ticks "$mirror_pid")"; }

# Samples tandem_stream_lag_seconds every 0.5 s into $work/lag-$1 until killed.
sample_lag() { # tag
    while :; do metric tandem_stream_lag_seconds >>"$work/lag-$1"; sleep 0.5; done
}

max_of() { sort -n "$1" 2>/dev/null | tail -1; }

master_pos() { my_root -N -B -e "SHOW MASTER STATUS" | awk '{ print $1 ":" $2 }'; }

# Waits until the stream's checkpoint reaches the primary's current end.
wait_caught_up() { # limit seconds
    local want got
    want=$(master_pos)
    for _ in $(seq $(($1 * 10))); do
        got=$(curl -s "127.0.0.1:$stream_admin/status" | python3 -c '
import json, sys
c = (json.load(sys.stdin).get("stream") or {}).get("checkpoint") or {}
print(str(c.get("file")) + ":" + str(c.get("offset")))')
        if [[ $got != None:None ]] && python3 -c '
import sys
(gf, go), (wf, wo) = (s.rsplit(":", 1) for s in sys.argv[1:3])
sys.exit(0 if (gf, int(go)) >= (wf, int(wo)) else 1)' "$got" "$want"; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# Waits until the statement mirror's queue is empty.
wait_mirror_drained() { # limit seconds
    for _ in $(seq $(($1 * 10))); do
        [[ $(status_field mirror.queue_depth) == 0 ]] && return 0
        sleep 0.1
    done
    return 1
}

run_sysbench() { # database workload → tps
    local out=$work/run-$1-$2.log
    "${old_cpus[@]}" sysbench "$2" "${sb[@]}" --mysql-db="$1" --mysql-port="$port" --threads="$THREADS" \
        --time="$DURATION" --db-ps-mode=auto --report-interval=0 run >"$out" 2>&1 ||
        { tail -5 "$out" >&2; die "sysbench failed ($1 $2)"; }
    awk '/^ *transactions:/ { gsub(/\(/, ""); print $2 " " $3 }' "$out"
}

tick_hz=$(getconf CLK_TCK)
raw=$work/raw.tsv
: >"$raw"
[[ $(nproc) -ge 2 ]] || { say "one CPU: the pinned placement is skipped"; placements=(shared); }
for placement in "${placements[@]}"; do
    place "$placement"
    for mode in "${modes[@]}"; do
        db=sb_${mode}_$placement
        prepare "$db"
        start_proxy "$mode" "$db"
        if [[ $mode == primary ]]; then
            # primary_only must not run the stream: the baseline carries no applier.
            say "primary_only: the proxy's stream state is '$(status_field stream.state)'"
        fi
        for workload in oltp_write_only oltp_read_write; do
            rows0=$(metric tandem_stream_rows_applied_total)
            txn0=$(metric tandem_stream_transactions_applied_total)
            grp0=$(metric tandem_stream_target_transactions_total)
            : >"$work/lag-$db-$workload"
            sample_lag "$db-$workload" &
            sampler=$!
            t0=$(date +%s.%N)
            read -r c0_my c0_pg c0_proxy c0_apply <<<"$(cpu_now)"
            read -r txns tps <<<"$(run_sysbench "$db" "$workload")"
            caught=ok
            case $mode in
                serial | parallel) wait_caught_up 300 || caught=late ;;
                statements) wait_mirror_drained 300 || caught=late ;;
            esac
            read -r c1_my c1_pg c1_proxy c1_apply <<<"$(cpu_now)"
            t1=$(date +%s.%N)
            kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
            rows1=$(metric tandem_stream_rows_applied_total)
            rows=$((rows1 - rows0))
            # Source transactions per target transaction (group commit).
            per_group=$(python3 -c "t, g = $(metric tandem_stream_transactions_applied_total) - $txn0, $(metric tandem_stream_target_transactions_total) - $grp0; print(f'{t / g:.1f}' if g > 0 else '-')")
            rate=$(python3 -c "print(f'{$rows / ($t1 - $t0):.0f}')")
            lag=$(max_of "$work/lag-$db-$workload")
            if [[ $mode == statements ]]; then
                us=$(status_field mirror.lag_max_us)
                lag=$(python3 -c "import sys; v = sys.argv[1]; print(f'{int(v) / 1e6:.3f}' if v.isdigit() else '-')" "$us")
                rate=-
            elif [[ $mode == primary || $mode == reader ]]; then
                lag=- rate=-
            fi
            # CPU µs per sysbench transaction: MariaDB, PostgreSQL, proxy, applier.
            cpu=$(python3 -c '
import sys
hz, txns = int(sys.argv[1]), int(sys.argv[2])
d = [(int(b) - int(a)) * 1e6 / hz for a, b in zip(sys.argv[3:7], sys.argv[7:11])]
print(",".join(f"{x / max(txns, 1):.0f}" for x in d))' "$tick_hz" "$txns" \
                "$c0_my" "$c0_pg" "$c0_proxy" "$c0_apply" "$c1_my" "$c1_pg" "$c1_proxy" "$c1_apply")
            # PostgreSQL and applier µs per applied row (binlog modes).
            per_row=$(python3 -c '
import sys
hz, rows = int(sys.argv[1]), int(sys.argv[2])
pg, ap = ((int(b) - int(a)) * 1e6 / hz for a, b in ((sys.argv[3], sys.argv[4]), (sys.argv[5], sys.argv[6])))
print(f"{pg / rows:.1f},{ap / rows:.1f}" if rows > 0 else "-,-")' "$tick_hz" "$rows" \
                "$c0_pg" "$c1_pg" "$c0_apply" "$c1_apply")
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$placement" "$mode" "$workload" "$tps" "$rate" "$lag" \
                "$caught" "$cpu" "$per_row" "$rows" "$per_group" >>"$raw"
            say "$placement $mode $workload: $tps tps, apply $rate rows/s ($rows rows), max lag $lag s ($caught);" \
                "CPU µs/txn mariadb,pg,proxy,applier $cpu; µs/row pg,applier $per_row; source txns per target txn $per_group"
        done
        if [[ $placement == shared && $OUTAGE -gt 0 && ($mode == serial || $mode == parallel) ]]; then
            # Catch-up: the target refuses connections for $OUTAGE s under load.
            sysbench oltp_write_only "${sb[@]}" --mysql-db="$db" --mysql-port="$port" --threads="$THREADS" \
                --time="$OUTAGE" --db-ps-mode=auto run >"$work/outage-$db.log" 2>&1 &
            load=$!
            # The private PostgreSQL is stopped (SIGSTOP on the postmaster and
            # its backends): the applier's connections hang, as on a frozen host.
            frozen=("$pg_pid" $(pgrep -P "$pg_pid"))
            kill -STOP "${frozen[@]}"
            wait "$load" || { kill -CONT "${frozen[@]}"; die "sysbench failed during the outage"; }
            rows0=$(metric tandem_stream_rows_applied_total)
            t0=$(date +%s.%N)
            kill -CONT "${frozen[@]}"
            caught=ok
            wait_caught_up 600 || caught=late
            t1=$(date +%s.%N)
            rows1=$(metric tandem_stream_rows_applied_total)
            rate=$(python3 -c "print(f'{($rows1 - $rows0) / ($t1 - $t0):.0f}')")
            secs=$(python3 -c "print(f'{$t1 - $t0:.1f}')")
            printf '%s\t%s\tcatch_up\t-\t%s\t%s\t%s\t-\t-\t-\n' "$placement" "$mode" "$rate" "$secs" "$caught" >>"$raw"
            say "$mode catch-up: $((rows1 - rows0)) rows in $secs s = $rate rows/s ($caught)"
        fi
        if [[ $mode == serial || $mode == parallel ]]; then
            # Identical after all that: row count and checksums of both sides.
            my_sum=$(my_root -N -B -e "SELECT COUNT(*), SUM(k), SUM(id * k) FROM $db.sbtest1" | tr '\t' ' ')
            pg_sum=$(pg -d "$db" -At -F ' ' -c "SELECT COUNT(*), SUM(k), SUM(id::bigint * k) FROM sbtest1")
            printf '%s\t%s\tsums\t%s\t%s\t-\t-\t-\t-\t-\n' "$placement" "$mode" "$my_sum" "$pg_sum" >>"$raw"
        fi
        stop_proxy
    done
done

mkdir -p "$repo/benches/results"
result=$repo/benches/results/stream-$(date +%Y-%m-%d-%H%M%S).txt
{
    echo "Tandem change stream benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git -C "$repo" rev-parse --short HEAD)"
    echo "sysbench $THREADS threads, ${DURATION}s per run, table size $TABLE_SIZE, prepared statements (--db-ps-mode=auto);"
    echo "parallel = apply_workers $WORKERS; outage $OUTAGE s. MariaDB, PostgreSQL, sysbench and the proxy share"
    echo "this $(nproc)-CPU machine (shared placement), or MariaDB + sysbench + proxy on CPU 0 and PostgreSQL +"
    echo "tandem mirror on CPU 1 (pinned). Figures are indicative if other work ran at the same time."
    python3 - "$raw" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter="\t"))
get = lambda p, m, w: next((r for r in rows if r[:3] == [p, m, w]), None)
names = {"primary": "primary_only", "reader": "primary_only + binlog reader",
         "statements": "dual_write statements",
         "serial": "dual_write binlog serial", "parallel": "dual_write binlog parallel"}
places = [p for p in ("shared", "pinned") if any(r[0] == p for r in rows)]
modes = [m for m in names if any(r[1] == m for r in rows)]

def ratio(p, m, w, to="primary"):
    r, base = get(p, m, w), get(p, to, w)
    if not r or not base or float(base[3]) == 0:
        return None, r
    return float(r[3]) / float(base[3]), r

with_reader = "reader" in modes

print()
print("Primary TPS and its ratio to primary_only, both placements side by side")
print("(shared: all on every CPU; pinned: PostgreSQL + applier on CPU 1, the rest on CPU 0)")
if with_reader:
    print("and to primary_only + binlog reader (what serving any replica costs the primary):")
print()
head = f"{'mode':28} {'workload':16}"
for p in places:
    head += f" {p + ' TPS':>11} {'ratio':>6}" + (f" {'/reader':>7}" if with_reader else "")
print(head)
print("-" * len(head))
for w in ("oltp_write_only", "oltp_read_write"):
    for m in modes:
        line = f"{names[m]:28} {w:16}"
        for p in places:
            q, r = ratio(p, m, w)
            line += f" {float(r[3]):11.1f} {q:6.3f}" if r and q is not None else f" {'-':>11} {'-':>6}"
            if with_reader:
                qr, _ = ratio(p, m, w, "reader")
                line += f" {qr:7.3f}" if qr is not None and m not in ("primary", "reader") else f" {'-':>7}"
        print(line)
print()
print("Stream: rows applied per second during the run (until caught up), largest lag seen, source")
print("transactions per target transaction (group commit):")
print()
print(f"{'placement':9} {'mode':28} {'workload':16} {'rows/s':>8} {'max lag s':>9} {'txns/group':>10}")
for p in places:
    for w in ("oltp_write_only", "oltp_read_write"):
        for m in modes:
            r = get(p, m, w)
            if r and m not in ("primary", "reader"):
                late = "" if r[6] == "ok" else " (not caught up in time)"
                print(f"{p:9} {names[m]:28} {w:16} {r[4]:>8} {r[5]:>9} {r[10] if m != 'statements' else '-':>10}{late}")
print()
print("CPU µs per sysbench transaction (MariaDB incl. its binlog dump thread; PostgreSQL incl. its backends;")
print("the proxy; the applier = `tandem mirror`, binlog modes only — the statement mirror runs inside the")
print("proxy) and µs per applied row (PostgreSQL, applier):")
print()
print(f"{'placement':9} {'mode':28} {'workload':16} {'mariadb':>8} {'pg':>7} {'proxy':>7} {'applier':>8} {'pg/row':>7} {'app/row':>8}")
for p in places:
    for w in ("oltp_write_only", "oltp_read_write"):
        for m in modes:
            r = get(p, m, w)
            if not r:
                continue
            my, pg, px, ap = r[7].split(",")
            if m != "serial" and m != "parallel":
                ap = "-"
            pr, ar = r[8].split(",")
            print(f"{p:9} {names[m]:28} {w:16} {my:>8} {pg:>7} {px:>7} {ap:>8} {pr:>7} {ar:>8}")
print()
for m in ("serial", "parallel"):
    r = get("shared", m, "catch_up")
    if r:
        print(f"catch-up after the outage, {names[m]}: {r[4]} rows/s ({r[5]} s to reach the primary's position{'' if r[6] == 'ok' else ', NOT reached'})")
    for p in places:
        s = get(p, m, "sums")
        if s:
            same = "identical" if s[3] == s[4] else "DIFFERENT"
            print(f"  {names[m]} ({p}) after the run: MariaDB count/sum(k)/sum(id*k) {s[3]} vs PostgreSQL {s[4]}: {same}")
print()
print("raw:")
for r in rows:
    print("  " + "\t".join(r))
PY
} | tee "$result"
say "saved $result"
