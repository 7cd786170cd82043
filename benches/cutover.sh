#!/usr/bin/env bash
# Fleet cutover under load (run by hand, not in CI).
#
# Three `tandem serve` processes (release build) in dual_write in front of
# one MariaDB (row-format binlog) with PostgreSQL as the new side, each
# running the change stream (one holds the lease) and a fleet member. Clients
# (PyMySQL, spread over the three proxies) insert continuously; after a warm
# up, `tandem cutover` flips the fleet to PostgreSQL. Reported:
#   * the pause the cutover itself measured (writes held), and its steps;
#   * the longest time any client waited for one write (retries included:
#     a write held at the fence on a session of the old side is answered
#     with error 1290, not executed, and the client reconnects and retries);
#   * client latency p50/p99 before the flip and in the window around it;
#   * lost writes: every acknowledged insert must be on PostgreSQL (0).
# Results are printed and written to benches/results/cutover-<date>.txt.
#
# Environment: CLIENTS per proxy [3], WARMUP seconds [5], AFTER seconds [5],
#   MAX_PAUSE_MS [1000], KEEP=1 keeps the work directory.
set -euo pipefail

CLIENTS=${CLIENTS:-3}
WARMUP=${WARMUP:-5}
AFTER=${AFTER:-5}
MAX_PAUSE_MS=${MAX_PAUSE_MS:-1000}
PROXIES=3
DB_USER=app
DB_PASSWORD=bench

# shellcheck source=scripts/lib/bench.sh
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/bench.sh"
bench_init cutover
for v in CLIENTS WARMUP AFTER MAX_PAUSE_MS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done

# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"
start_mariadb "$work" || die "MariaDB did not start"
start_postgres "$work" || die "PostgreSQL did not start"
my_root -e "CREATE DATABASE shop"
create_app_accounts "$DB_USER" "$DB_PASSWORD" shop
my_root -e "CREATE TABLE shop.orders (id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY,
    client int NOT NULL, seq int NOT NULL, v varchar(40) NOT NULL, UNIQUE KEY (client, seq))"
pg_url="postgres://$DB_USER:$DB_PASSWORD@127.0.0.1:$PG_PORT/shop"

for i in $(seq 0 $((PROXIES - 1))); do
    port=$(free_port)
    admin=$(free_port)
    echo "$port" >"$work/port$i"
    cat >"$work/proxy$i.toml" <<TOML
listen = "127.0.0.1:$port"
phase = "dual_write"
[[users]]
name = "$DB_USER"
password = "$DB_PASSWORD"
[backends.old]
kind = "mysql"
url = "mysql://$DB_USER:$DB_PASSWORD@127.0.0.1:$MY_PORT/shop"
[backends.new]
kind = "postgres"
url = "$pg_url"
[mirror]
source = "binlog"
server_id = 4242
drift_log = "$work/drift$i.jsonl"
[admin]
listen = "127.0.0.1:$admin"
[fleet]
enabled = true
id = "proxy-$i"
TOML
done

"$tandem" schema --config "$work/proxy0.toml" --apply >"$work/schema.log" 2>&1 ||
    die "schema --apply failed: $(tail -5 "$work/schema.log")"
for i in $(seq 0 $((PROXIES - 1))); do
    "$tandem" serve --config "$work/proxy$i.toml" >"$work/proxy$i.log" 2>&1 &
    pids+=($!)
done
for i in $(seq 0 $((PROXIES - 1))); do
    servers_wait "${pids[-$((PROXIES - i))]}" "$work/proxy$i.log" python3 -c \
        "import socket; socket.create_connection(('127.0.0.1', $(cat "$work/port$i")), 1)" ||
        die "proxy $i did not start"
done
# The fleet registers within a heartbeat; the stream starts at the primary.
for _ in $(seq 1 100); do
    n=$("$tandem" fleet status --config "$work/proxy0.toml" 2>/dev/null | grep -c "^LIVE .*proxy-" || true)
    [[ $n -ge $PROXIES ]] && break
    sleep 0.2
done
[[ ${n:-0} -ge $PROXIES ]] || die "only ${n:-0} of $PROXIES proxies registered"

ports=$(for i in $(seq 0 $((PROXIES - 1))); do cat "$work/port$i"; done | paste -sd,)
say "load: $CLIENTS clients on each of $PROXIES proxies ($ports), cutover after ${WARMUP}s"
python3 - "$ports" "$CLIENTS" "$WARMUP" "$AFTER" "$work" "$tandem" "$MAX_PAUSE_MS" \
    "$pg_url" >"$work/report.txt" <<'PY'
import json, subprocess, sys, threading, time
import pymysql

ports = [int(p) for p in sys.argv[1].split(",")]
clients, warmup, after = int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
work, tandem, max_pause, pg_url = sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8]
stop = threading.Event()
results = {}  # client -> list of (start, end, seq) for acknowledged writes
errors = {}

def connect(port, attempts=None, start=0.0):
    while True:
        try:
            return pymysql.connect(host="127.0.0.1", port=port, user="app", password="bench",
                                   database="shop", autocommit=True, connect_timeout=5)
        except pymysql.MySQLError as e:
            if attempts is not None:
                code = e.args[0] if e.args else 0
                attempts.append((round((time.monotonic() - start) * 1000), f"login error {code}"))
            if stop.is_set():
                return None
            time.sleep(0.01)

slowest = [0.0, []]  # longest write: seconds, its attempts (offset ms, what)
slow_lock = threading.Lock()

def client(cid, port):
    acked, errs = [], {}
    conn = connect(port)
    seq = 0
    while not stop.is_set() and conn is not None:
        start = time.monotonic()
        attempts = []
        while True:
            try:
                with conn.cursor() as c:
                    c.execute("INSERT INTO orders (client, seq, v) VALUES (%s, %s, %s)",
                              (cid, seq, f"c{cid}-{seq}"))
                break
            except pymysql.MySQLError as e:
                code = e.args[0] if e.args else 0
                errs[code] = errs.get(code, 0) + 1
                attempts.append((round((time.monotonic() - start) * 1000), f"error {code}"))
                if code == 1062:  # an earlier attempt did commit: acknowledged
                    break
                try:
                    conn.close()
                except Exception:
                    pass
                conn = connect(port, attempts, start)
                attempts.append((round((time.monotonic() - start) * 1000), "reconnected"))
                if conn is None:
                    return
        end = time.monotonic()
        acked.append((start, end, seq))
        if end - start > slowest[0]:
            with slow_lock:
                if end - start > slowest[0]:
                    slowest[0] = end - start
                    slowest[1] = attempts + [(round((end - start) * 1000), "acknowledged")]
        seq += 1
    results[cid], errors[cid] = acked, errs

threads = [threading.Thread(target=client, args=(p * clients + k, port))
           for p, port in enumerate(ports) for k in range(clients)]
for t in threads: t.start()
time.sleep(warmup)
flip_start = time.monotonic()
out = subprocess.run([tandem, "cutover", "--config", f"{work}/proxy0.toml",
                      "--max-pause-ms", max_pause], capture_output=True, text=True)
flip_end = time.monotonic()
time.sleep(after)
stop.set()
for t in threads: t.join()

def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")

all_w = [w for ws in results.values() for w in ws]
before = [e - s for s, e, _ in all_w if e < flip_start]
window = [e - s for s, e, _ in all_w if e >= flip_start - 0.5 and s <= flip_end + 0.5]
longest = max((e - s for s, e, _ in all_w), default=0)
print("cutover output:")
for line in (out.stdout + out.stderr).strip().splitlines():
    print("  " + line)
print(f"cutover command exit {out.returncode}, {flip_end - flip_start:.2f} s wall")
print(f"writes acknowledged: {len(all_w)} ({len(all_w) / (warmup + after + flip_end - flip_start):.0f}/s)")
print(f"latency before the flip: p50 {pct(before, .5):.1f} ms, p99 {pct(before, .99):.1f} ms")
print(f"latency around the flip (±0.5 s): p50 {pct(window, .5):.1f} ms, p99 {pct(window, .99):.1f} ms, n={len(window)}")
print(f"longest client wait for one write: {longest * 1000:.0f} ms"
      f" ({', '.join(f'{ms} ms {what}' for ms, what in slowest[1])})")
codes = {}
for errs in errors.values():
    for k, v in errs.items(): codes[k] = codes.get(k, 0) + v
print(f"client errors by code (each retried): {json.dumps(codes, sort_keys=True)}")
with open(f"{work}/acked.txt", "w") as f:
    for cid, ws in results.items():
        for _, _, seq in ws:
            f.write(f"{cid}\t{seq}\n")
PY
cat "$work/report.txt"

# Every acknowledged write is on PostgreSQL (the authoritative side now).
psql -X -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d shop -c \
    "CREATE TEMP TABLE acked (client int, seq int)" \
    -c "\\copy acked FROM '$work/acked.txt'" \
    -At -c "SELECT count(*) FROM acked a WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.client = a.client AND o.seq = a.seq)" \
    >"$work/lost.txt"
lost=$(tail -1 "$work/lost.txt")
echo "acknowledged writes missing on PostgreSQL: $lost" | tee -a "$work/report.txt"

mkdir -p "$repo/benches/results"
out="$repo/benches/results/cutover-$(date -u +%F-%H%M%S).txt"
{
    echo "# benches/cutover.sh $(date -u +%FT%TZ) on $(nproc) cores; $PROXIES proxies, $CLIENTS clients each"
    echo "# (load from other processes on the machine during this run: $(cut -d' ' -f1-3 /proc/loadavg))"
    cat "$work/report.txt"
} >"$out"
say "written $out"
[[ $lost == 0 ]] || die "$lost acknowledged writes are missing"
