#!/usr/bin/env bash
# End-to-end load benchmark (run by hand, not in CI).
#
# Starts a private MariaDB, HAProxy in TCP mode in front of it (the baseline
# for "a proxy that only forwards bytes") and Tandem in front of it, then runs
# sysbench against all three, interleaved and repeated, and reports medians:
# throughput of each path, the ratios, and Tandem's CPU cost per statement.
# Then a short fixed-size run per workload under `strace -c -f` counts system
# calls (futex apart: a wake-up between threads) per statement for HAProxy and
# Tandem, and Tandem's heap allocations per statement (the release build has
# the `count-allocs` feature; /metrics reports the total).
# With TLS=1 (default) two more paths run in the same matrix: sysbench over
# TLS straight to MariaDB, and over TLS to Tandem with Tandem's backend hop
# encrypted too (`ssl-mode=REQUIRED`); the plaintext Tandem path says
# `ssl-mode=DISABLED`, so MariaDB having TLS does not change it.
# Results are printed and written to benches/results/e2e-<date>.txt.
#
# Usage: benches/e2e.sh
# Environment (defaults in brackets):
#   DURATION    seconds per sysbench run                    [10]
#   ROUNDS      repetitions of the whole matrix (0: skip)   [3]
#   PROFILE_EVENTS  sysbench events per traced run (0: skip) [2000]
#   INSTR_EVENTS    point-select events per instruction count (0: skip)  [4000]
#               HAProxy and Tandem (and tandem_b) run once more under
#               valgrind's callgrind, which counts the user-space
#               instructions each spends per statement: 3 runs of N events
#               per workload (read_only: N/10) with one client thread, the
#               median reported. Unlike CPU time this count moves a few per
#               cent between runs, so a change of a few hundred instructions
#               per statement shows. Valgrind counts each byte a `rep movsb`
#               copies as an instruction, so a large result's copies weigh
#               more here than on the CPU.
#   WORKER_THREADS  tandem's [runtime] worker_threads          [0]
#   THREADS     sysbench client threads                     [4]
#   TLS         1: also measure the TLS paths, 0: skip them [1]
#   TABLE_SIZE  rows in sbtest1                             [10000]
#   PIN         1: MariaDB and sysbench on CPU 1, every proxy on CPU 0, so
#               each proxy's CPU per statement is measured without the
#               others' scheduling noise (needs 2 CPUs and taskset)  [0]
#   LOG_LEVEL   tandem's log.level                          [info]
#               (the default a user runs: sessions' spans are on)
#   TANDEM_BIN  proxy command to measure; must accept `serve --config FILE`.
#               Default: target/release/tandem, built first with cargo.
#   TANDEM_BIN_B  a second build to measure in the same run (e.g. the one
#               before a change): target `tandem_b`, same config, its own port;
#               the report adds tandem_b's ratios and tandem/tandem_b.
#   KEEP=1      keep the work directory (logs, configs) for inspection
set -euo pipefail

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-4}
TABLE_SIZE=${TABLE_SIZE:-10000}
WORKLOADS=(oltp_point_select oltp_read_only)
PS_MODES=(auto disable)
TARGETS=(direct haproxy tandem)
TLS=${TLS:-1}
[[ $TLS == 1 ]] && TARGETS+=(direct_tls tandem_tls)
[[ -n ${TANDEM_BIN_B:-} ]] && TARGETS+=(tandem_b)
DB_USER=app
DB_PASSWORD=bench

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { printf 'e2e: %s\n' "$*" >&2; }
die() {
    say "$*"
    exit 1
}

PROFILE_EVENTS=${PROFILE_EVENTS:-2000}
LOG_LEVEL=${LOG_LEVEL:-info}
PIN=${PIN:-0}
# Where the proxies and the database side run (PIN=1) or everything anywhere.
proxy_cpus=() db_cpus=()
if [[ $PIN == 1 ]]; then
    [[ $(nproc) -ge 2 ]] && command -v taskset >/dev/null || die "PIN=1 needs 2 CPUs and taskset"
    proxy_cpus=(taskset -c 0) db_cpus=(taskset -c 1)
fi
WORKER_THREADS=${WORKER_THREADS:-0}
for v in DURATION THREADS TABLE_SIZE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
INSTR_EVENTS=${INSTR_EVENTS:-4000}
for v in ROUNDS PROFILE_EVENTS INSTR_EVENTS WORKER_THREADS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v must be a non-negative integer (got '${!v}')"
done

PREREQ_NAME=e2e
# shellcheck source=scripts/install-prereqs.sh
source "$repo/scripts/install-prereqs.sh"
install_prereqs
if ((INSTR_EVENTS > 0)) && ! command -v valgrind >/dev/null; then
    prereq_apt_install valgrind || die "INSTR_EVENTS needs valgrind (or set INSTR_EVENTS=0)"
fi

if [[ -n ${TANDEM_BIN:-} ]]; then
    tandem_cmd=$TANDEM_BIN
    say "measuring TANDEM_BIN=$tandem_cmd"
else
    say "building tandem (cargo build --release --features count-allocs)"
    (cd "$repo" && cargo build --release --quiet --features count-allocs)
    tandem_cmd=$repo/target/release/tandem
fi
[[ -x $tandem_cmd ]] || tandem_cmd=$(command -v "$tandem_cmd") || die "cannot run $TANDEM_BIN"

find_program() {
    local dir
    command -v "$1" 2>/dev/null && return 0
    for dir in /usr/sbin /usr/local/sbin /sbin; do
        [[ -x $dir/$1 ]] && { printf '%s\n' "$dir/$1"; return 0; }
    done
    die "cannot find $1"
}

# ---------------------------------------------------------------------------
# work directory and cleanup

work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-e2e-XXXXXX")
pids=()
cleanup() {
    local pid i
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    if [[ -n ${KEEP:-} ]]; then
        say "work directory kept: $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Distinct free loopback ports (held together while picking).
read -r _ haproxy_port tandem_port admin_port tls_port tls_admin_port b_port b_admin_port \
    cg_haproxy_port cg_tandem_port cg_admin_port cg_b_port cg_b_admin_port < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(13)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)

# Waits until `mariadb` can run a query through 127.0.0.1:PORT as the app user.
wait_for_sql() {
    local port=$1 what=$2 pid=$3 log=$4 i
    for ((i = 0; i < 600; i++)); do
        if mariadb --no-defaults -h127.0.0.1 -P"$port" -u"$DB_USER" -p"$DB_PASSWORD" \
            -e 'SELECT 1' sbtest >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    tail -n 30 "$log" >&2 || true
    die "$what did not accept connections on 127.0.0.1:$port (log: $log)"
}

# ---------------------------------------------------------------------------
# MariaDB

# shellcheck source=scripts/lib/servers.sh
source "$repo/scripts/lib/servers.sh"
# One self-signed certificate for MariaDB and Tandem. sysbench 1.0's
# --mysql-ssl=on loads client-key.pem, client-cert.pem and cacert.pem from
# its working directory, so the runs below start in $work/tls.
mkdir -p "$work/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" >"$work/tls/openssl.log" 2>&1 ||
    die "openssl could not make a certificate"
chmod 644 "$work/tls/key.pem"
cp "$work/tls/key.pem" "$work/tls/client-key.pem"
cp "$work/tls/cert.pem" "$work/tls/client-cert.pem"
cp "$work/tls/cert.pem" "$work/tls/cacert.pem"
say "starting MariaDB (row-format binlog and TLS, as in production)"
start_mariadb "$work" --innodb-log-file-size=256M \
    --ssl-ca="$work/tls/cert.pem" --ssl-cert="$work/tls/cert.pem" --ssl-key="$work/tls/key.pem" ||
    die "MariaDB did not start"
mariadb_pid=${pids[-1]}
[[ $PIN == 1 ]] && taskset -a -p -c 1 "$mariadb_pid" >/dev/null
mariadb_port=$MY_PORT
my_root <<EOF
CREATE DATABASE sbtest;
CREATE USER '$DB_USER'@'%' IDENTIFIED BY '$DB_PASSWORD';
CREATE USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASSWORD';
GRANT ALL PRIVILEGES ON sbtest.* TO '$DB_USER'@'%';
GRANT ALL PRIVILEGES ON sbtest.* TO '$DB_USER'@'localhost';
EOF

sb_common=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-user="$DB_USER"
    --mysql-password="$DB_PASSWORD" --mysql-db=sbtest --tables=1 --table-size="$TABLE_SIZE")
say "sysbench prepare (1 table, $TABLE_SIZE rows)"
sysbench oltp_read_only "${sb_common[@]}" --mysql-port="$mariadb_port" prepare >"$work/prepare.log" 2>&1 ||
    { cat "$work/prepare.log" >&2; die "sysbench prepare failed"; }

# ---------------------------------------------------------------------------
# HAProxy (byte-forwarding baseline)

cat >"$work/haproxy.cfg" <<EOF
global
    maxconn 2000

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h

listen mariadb
    bind 127.0.0.1:$haproxy_port
    server backend 127.0.0.1:$mariadb_port
EOF
haproxy_bin=$(find_program haproxy)
"$haproxy_bin" -c -q -f "$work/haproxy.cfg" || die "invalid generated haproxy.cfg"
say "starting HAProxy on 127.0.0.1:$haproxy_port"
setsid "${proxy_cpus[@]}" "$haproxy_bin" -db -f "$work/haproxy.cfg" </dev/null >"$work/haproxy.log" 2>&1 &
haproxy_pid=$!
pids+=("$haproxy_pid")
wait_for_sql "$haproxy_port" HAProxy "$haproxy_pid" "$work/haproxy.log"

# ---------------------------------------------------------------------------
# Tandem

cat >"$work/proxy.toml" <<EOF
listen = "127.0.0.1:$tandem_port"
phase = "primary_only"

[[users]]
name = "$DB_USER"
password = "\${APP_PASSWORD}"

[backends.old]
kind = "mysql"
url = "mysql://$DB_USER:\${OLD_PASSWORD}@127.0.0.1:$mariadb_port/sbtest?ssl-mode=DISABLED"

[admin]
listen = "127.0.0.1:$admin_port"

[runtime]
worker_threads = $WORKER_THREADS

[log]
level = "$LOG_LEVEL"
EOF
say "starting tandem on 127.0.0.1:$tandem_port"
APP_PASSWORD=$DB_PASSWORD OLD_PASSWORD=$DB_PASSWORD \
    setsid "${proxy_cpus[@]}" "$tandem_cmd" serve --config "$work/proxy.toml" </dev/null >"$work/tandem.log" 2>&1 &
tandem_pid=$!
pids+=("$tandem_pid")
wait_for_sql "$tandem_port" tandem "$tandem_pid" "$work/tandem.log"

tandem_tls_pid=
if [[ $TLS == 1 ]]; then
    # The same proxy with both hops encrypted.
    sed -e "s/127.0.0.1:$tandem_port/127.0.0.1:$tls_port/" \
        -e "s/127.0.0.1:$admin_port/127.0.0.1:$tls_admin_port/" \
        -e "s/ssl-mode=DISABLED/ssl-mode=REQUIRED/" "$work/proxy.toml" >"$work/proxy-tls.toml"
    printf '\n[tls]\ncert = "%s"\nkey = "%s"\n' "$work/tls/cert.pem" "$work/tls/key.pem" >>"$work/proxy-tls.toml"
    say "starting tandem with TLS on 127.0.0.1:$tls_port"
    APP_PASSWORD=$DB_PASSWORD OLD_PASSWORD=$DB_PASSWORD \
        setsid "${proxy_cpus[@]}" "$tandem_cmd" serve --config "$work/proxy-tls.toml" </dev/null >"$work/tandem-tls.log" 2>&1 &
    tandem_tls_pid=$!
    pids+=("$tandem_tls_pid")
    wait_for_sql "$tls_port" "tandem (TLS)" "$tandem_tls_pid" "$work/tandem-tls.log"
fi

tandem_b_pid=
if [[ -n ${TANDEM_BIN_B:-} ]]; then
    [[ -x $TANDEM_BIN_B ]] || die "cannot run TANDEM_BIN_B=$TANDEM_BIN_B"
    sed -e "s/127.0.0.1:$tandem_port/127.0.0.1:$b_port/" \
        -e "s/127.0.0.1:$admin_port/127.0.0.1:$b_admin_port/" "$work/proxy.toml" >"$work/proxy-b.toml"
    say "starting the second build (TANDEM_BIN_B=$TANDEM_BIN_B) on 127.0.0.1:$b_port"
    APP_PASSWORD=$DB_PASSWORD OLD_PASSWORD=$DB_PASSWORD \
        setsid "${proxy_cpus[@]}" "$TANDEM_BIN_B" serve --config "$work/proxy-b.toml" </dev/null >"$work/tandem-b.log" 2>&1 &
    tandem_b_pid=$!
    pids+=("$tandem_b_pid")
    wait_for_sql "$b_port" "tandem (B)" "$tandem_b_pid" "$work/tandem-b.log"
fi

# ---------------------------------------------------------------------------
# measurements

clk_tck=$(getconf CLK_TCK)

# utime + stime of a process, in clock ticks (fields 14 and 15 of stat; the
# command name in field 2 may hold spaces, so split after its closing paren).
cpu_ticks() {
    local stat rest
    stat=$(<"/proc/$1/stat") || die "process $1 is gone"
    rest=${stat##*) }
    local -a f
    read -ra f <<<"$rest"
    echo $((f[11] + f[12]))
}

port_of() {
    case $1 in
        direct) echo "$mariadb_port" ;;
        haproxy) echo "$haproxy_port" ;;
        tandem) echo "$tandem_port" ;;
        direct_tls) echo "$mariadb_port" ;;
        tandem_tls) echo "$tls_port" ;;
        tandem_b) echo "$b_port" ;;
    esac
}
tls_args() {
    case $1 in
        *_tls) echo "--mysql-ssl=on" ;;
        *) echo "--mysql-ssl=off" ;;
    esac
}
pid_of() {
    case $1 in
        haproxy) echo "$haproxy_pid" ;;
        tandem) echo "$tandem_pid" ;;
        tandem_tls) echo "$tandem_tls_pid" ;;
        tandem_b) echo "$tandem_b_pid" ;;
        *) echo "" ;;
    esac
}

raw=$work/raw.tsv
printf 'round\tworkload\tmode\ttarget\ttps\tqueries\tcpu_ticks\n' >"$raw"
total_runs=$((ROUNDS * ${#WORKLOADS[@]} * ${#PS_MODES[@]} * ${#TARGETS[@]}))
say "running $total_runs sysbench runs of ${DURATION}s, $THREADS threads (about $((total_runs * (DURATION + 1) / 60 + 1)) min)"
run=0
cd "$work/tls"
for ((round = 1; round <= ROUNDS; round++)); do
    # Rotate the target order each round so no path always runs first.
    order=()
    for ((k = 0; k < ${#TARGETS[@]}; k++)); do
        order+=("${TARGETS[(k + round - 1) % ${#TARGETS[@]}]}")
    done
    for workload in "${WORKLOADS[@]}"; do
        for mode in "${PS_MODES[@]}"; do
            for target in "${order[@]}"; do
                run=$((run + 1))
                pid=$(pid_of "$target")
                before=0
                [[ -n $pid ]] && before=$(cpu_ticks "$pid")
                out=$work/run-$round-$workload-$mode-$target.log
                if "${db_cpus[@]}" sysbench "$workload" "${sb_common[@]}" --mysql-port="$(port_of "$target")" \
                    "$(tls_args "$target")" --threads="$THREADS" --time="$DURATION" --events=0 --report-interval=0 \
                    --db-ps-mode="$mode" run >"$out" 2>&1; then
                    ticks=-1
                    [[ -n $pid ]] && ticks=$(($(cpu_ticks "$pid") - before))
                    read -r tps queries < <(awk '
                        /^ *transactions:/ { gsub(/\(/, ""); tps = $3 }
                        /^ *queries:/      { q = $2 }
                        END { print (tps == "" ? "nan" : tps), (q == "" ? "nan" : q) }' "$out")
                else
                    say "run failed: $workload $mode $target (round $round); last lines of $out:"
                    tail -n 5 "$out" >&2
                    tps=nan queries=nan ticks=-1
                fi
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
                    "$round" "$workload" "$mode" "$target" "$tps" "$queries" "$ticks" >>"$raw"
                say "[$run/$total_runs] round $round $workload ps=$mode $target: $tps tps"
            done
        done
    done
done

# ---------------------------------------------------------------------------
# per-statement counts: a short fixed-size run per workload under strace

# Total heap allocations of tandem so far ("-" without the count-allocs
# feature).
allocations() {
    local port
    case $1 in
        tandem) port=$admin_port ;;
        tandem_tls) port=$tls_admin_port ;;
        *) echo -; return ;;
    esac
    python3 - "$port" <<'PY'
import sys, urllib.request
try:
    body = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
except Exception:
    print("-"); sys.exit()
for line in body.splitlines():
    if line.startswith("tandem_allocations_total "):
        print(line.split()[1]); break
else:
    print("-")
PY
}

profile=$work/profile.tsv
printf 'workload\tmode\ttarget\tqueries\tsyscalls\tfutex\tallocations\n' >"$profile"
if ((PROFILE_EVENTS > 0)); then
    say "counting system calls (strace -c -f) and allocations over $PROFILE_EVENTS events per run"
    for workload in "${WORKLOADS[@]}"; do
        for mode in "${PS_MODES[@]}"; do
            traced=(haproxy tandem)
            [[ $TLS == 1 ]] && traced+=(tandem_tls)
            for target in "${traced[@]}"; do
                pid=$(pid_of "$target")
                trace=$work/strace-$workload-$mode-$target.txt
                out=$work/profile-$workload-$mode-$target.log
                a0=$(allocations "$target")
                strace -c -f -U name,calls -o "$trace" -p "$pid" 2>"$trace.err" &
                strace_pid=$!
                sleep 1 # let strace attach to every thread
                sysbench "$workload" "${sb_common[@]}" --mysql-port="$(port_of "$target")" \
                    "$(tls_args "$target")" --threads="$THREADS" --time=0 --events="$PROFILE_EVENTS" --report-interval=0 \
                    --db-ps-mode="$mode" run >"$out" 2>&1 || say "traced run failed: $workload $mode $target"
                kill -INT "$strace_pid" 2>/dev/null || true
                wait "$strace_pid" 2>/dev/null || true
                a1=$(allocations "$target")
                allocs=-
                [[ $a0 != - && $a1 != - ]] && allocs=$((a1 - a0))
                queries=$(awk '/^ *queries:/ { print $2 }' "$out")
                read -r calls futex < <(awk '
                    $1 == "futex" { f = $2 }
                    $1 == "total" { t = $2 }
                    END { print (t == "" ? "nan" : t), (f == "" ? 0 : f) }' "$trace")
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$mode" "$target" \
                    "${queries:-nan}" "$calls" "$futex" "$allocs" >>"$profile"
                say "traced $workload ps=$mode $target: ${queries:-?} statements, $calls system calls ($futex futex), $allocs allocations"
            done
        done
    done
fi

# ---------------------------------------------------------------------------
# user-space instructions per statement: HAProxy and Tandem under callgrind

# The instruction total of a callgrind dump file.
dump_total() {
    awk '/^(summary|totals):/ { print $2; exit }' "$1"
}

# How many dumps callgrind wrote for TARGET so far (they are numbered .1, .2, ...).
dump_count() {
    local n=0
    while [[ -e $work/cg-$1.out.$((n + 1)) ]]; do n=$((n + 1)); done
    echo "$n"
}

# Zeroes PID's counters, runs sysbench, dumps, and prints "queries instructions".
counted_run() {
    local target=$1 pid=$2 port=$3 workload=$4 mode=$5 events=$6 out=$7 before i
    if ! callgrind_control -z "$pid" >/dev/null 2>&1; then
        say "callgrind_control could not reach $target (pid $pid)"
        echo "nan nan"
        return
    fi
    if ! sysbench "$workload" "${sb_common[@]}" --mysql-port="$port" --mysql-ssl=off \
        --threads=1 --time=0 --events="$events" --report-interval=0 \
        --db-ps-mode="$mode" run >"$out" 2>&1; then
        say "counted run failed: $workload $mode $target ($events events)"
        echo "nan nan"
        return
    fi
    before=$(dump_count "$target")
    callgrind_control -d "$pid" >/dev/null 2>&1 || true
    for ((i = 0; i < 100; i++)); do
        if [[ -s $work/cg-$target.out.$((before + 1)) ]]; then
            sleep 0.2 # written whole
            echo "$(awk '/^ *queries:/ { print $2 }' "$out") $(dump_total "$work/cg-$target.out.$((before + 1))")"
            return
        fi
        sleep 0.1
    done
    say "callgrind wrote no dump for $target"
    echo "nan nan"
}

instr=$work/instructions.tsv
printf 'workload\tmode\ttarget\trun\tqueries\tinstructions\n' >"$instr"
if ((INSTR_EVENTS > 0)); then
    say "counting user-space instructions per statement under callgrind (3 runs of $INSTR_EVENTS point-select events per path)"
    cg=(valgrind --tool=callgrind --dump-instr=no --collect-jumps=no)
    cg_pids=() cg_ports=() cg_targets=(haproxy tandem)
    sed -e "s/127.0.0.1:$haproxy_port/127.0.0.1:$cg_haproxy_port/" "$work/haproxy.cfg" >"$work/haproxy-cg.cfg"
    setsid "${proxy_cpus[@]}" "${cg[@]}" --callgrind-out-file="$work/cg-haproxy.out" \
        "$haproxy_bin" -db -f "$work/haproxy-cg.cfg" </dev/null >"$work/haproxy-cg.log" 2>&1 &
    cg_pids+=($!) cg_ports+=("$cg_haproxy_port")
    pids+=($!)
    sed -e "s/127.0.0.1:$tandem_port/127.0.0.1:$cg_tandem_port/" \
        -e "s/127.0.0.1:$admin_port/127.0.0.1:$cg_admin_port/" "$work/proxy.toml" >"$work/proxy-cg.toml"
    APP_PASSWORD=$DB_PASSWORD OLD_PASSWORD=$DB_PASSWORD \
        setsid "${proxy_cpus[@]}" "${cg[@]}" --callgrind-out-file="$work/cg-tandem.out" \
        "$tandem_cmd" serve --config "$work/proxy-cg.toml" </dev/null >"$work/tandem-cg.log" 2>&1 &
    cg_pids+=($!) cg_ports+=("$cg_tandem_port")
    pids+=($!)
    if [[ -n ${TANDEM_BIN_B:-} ]]; then
        sed -e "s/127.0.0.1:$tandem_port/127.0.0.1:$cg_b_port/" \
            -e "s/127.0.0.1:$admin_port/127.0.0.1:$cg_b_admin_port/" "$work/proxy.toml" >"$work/proxy-cg-b.toml"
        APP_PASSWORD=$DB_PASSWORD OLD_PASSWORD=$DB_PASSWORD \
            setsid "${proxy_cpus[@]}" "${cg[@]}" --callgrind-out-file="$work/cg-tandem_b.out" \
            "$TANDEM_BIN_B" serve --config "$work/proxy-cg-b.toml" </dev/null >"$work/tandem-cg-b.log" 2>&1 &
        cg_pids+=($!) cg_ports+=("$cg_b_port") cg_targets+=(tandem_b)
        pids+=($!)
    fi
    for k in "${!cg_targets[@]}"; do
        wait_for_sql "${cg_ports[k]}" "${cg_targets[k]} (callgrind)" "${cg_pids[k]}" "$work/${cg_targets[k]}-cg.log"
    done
    for workload in "${WORKLOADS[@]}"; do
        events=$INSTR_EVENTS
        [[ $workload == oltp_read_only ]] && events=$(((INSTR_EVENTS + 9) / 10))
        for mode in "${PS_MODES[@]}"; do
            for k in "${!cg_targets[@]}"; do
                target=${cg_targets[k]} pid=${cg_pids[k]} port=${cg_ports[k]}
                base=$work/cg-$workload-$mode-$target
                # Warm-up: caches filled, pool connections open.
                sysbench "$workload" "${sb_common[@]}" --mysql-port="$port" --mysql-ssl=off \
                    --threads=1 --time=0 --events="$events" --report-interval=0 \
                    --db-ps-mode="$mode" run >"$base-warm.log" 2>&1 || true
                for rep in 1 2 3; do
                    read -r q n < <(counted_run "$target" "$pid" "$port" "$workload" "$mode" "$events" "$base-$rep.log")
                    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$mode" "$target" "$rep" "$q" "$n" >>"$instr"
                    say "counted $workload ps=$mode $target (run $rep): $q statements, $n instructions"
                done
            done
        done
    done
fi

# ---------------------------------------------------------------------------
# report

mkdir -p "$repo/benches/results"
result=$repo/benches/results/e2e-$(date +%Y-%m-%d-%H%M%S).txt
{
    echo "Tandem end-to-end benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "commit:    $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)')"
    echo "machine:   $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "mariadb:   $("$(find_program mariadbd)" --version | sed 's/^.*Ver //')"
    echo "haproxy:   $("$haproxy_bin" -v | head -n1)"
    echo "sysbench:  $(sysbench --version)"
    echo "proxy:     $tandem_cmd"
    [[ -n ${TANDEM_BIN_B:-} ]] && echo "proxy B:   $TANDEM_BIN_B"
    echo "settings:  ROUNDS=$ROUNDS DURATION=${DURATION}s THREADS=$THREADS TABLE_SIZE=$TABLE_SIZE WORKER_THREADS=$WORKER_THREADS LOG_LEVEL=$LOG_LEVEL PIN=$PIN INSTR_EVENTS=$INSTR_EVENTS;" \
        "sysbench, servers and proxies share the machine"
    echo "ps-mode:   auto = server-side prepared statements, disable = text protocol"
    echo "values:    medians over rounds; ratios are of the medians, 'paired' = median of the" \
        "per-round ratios (each round runs the targets back to back);" \
        "CPU = proxy process utime+stime / statements sent"
    echo
    python3 - "$raw" "$clk_tck" <<'PY'
import csv, statistics, sys

raw, clk_tck = sys.argv[1], int(sys.argv[2])
runs = {}
with open(raw) as f:
    for r in csv.DictReader(f, delimiter="\t"):
        runs.setdefault((r["workload"], r["mode"], r["target"]), []).append(r)

def median(values):
    values = [v for v in values if v == v]  # drop NaN
    return statistics.median(values) if values else float("nan")

def tps(key):
    return median([float(r["tps"]) for r in runs.get(key, [])])

def run_cpu_us(r):
    ticks, queries = int(r["cpu_ticks"]), float(r["queries"])
    return ticks / clk_tck * 1e6 / queries if ticks >= 0 and queries > 0 else None

def cpu_us_per_stmt(key):
    return median([v for v in map(run_cpu_us, runs.get(key, [])) if v is not None])

def fmt(x, spec):
    return "-" if x != x else format(x, spec)

cols = ["workload", "mode", "direct TPS", "haproxy TPS", "tandem TPS", "tandem/haproxy",
        "haproxy/direct", "tandem/direct", "tandem CPU us/stmt", "haproxy CPU us/stmt"]
rows = []
seen = []
for r in runs:
    if r[:2] not in seen:
        seen.append(r[:2])
for workload, mode in seen:
    d, h, t = (tps((workload, mode, x)) for x in ("direct", "haproxy", "tandem"))
    rows.append([workload, mode, fmt(d, ".0f"), fmt(h, ".0f"), fmt(t, ".0f"),
                 fmt(t / h if h else float("nan"), ".3f"),
                 fmt(h / d if d else float("nan"), ".3f"),
                 fmt(t / d if d else float("nan"), ".3f"),
                 fmt(cpu_us_per_stmt((workload, mode, "tandem")), ".1f"),
                 fmt(cpu_us_per_stmt((workload, mode, "haproxy")), ".1f")])
if not rows:
    print("(throughput matrix skipped: ROUNDS=0)")
    sys.exit()
widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
print(line(cols))
print(line(["-" * w for w in widths]))
for r in rows:
    print(line(r))
def paired(key_a, key_b, metric=lambda r: float(r["tps"])):
    """Median over rounds of a/b, both measured in the same round (TPS unless
    another metric is given): the machine's drift between rounds cancels."""
    by_round = {}
    for key, slot in ((key_a, 0), (key_b, 1)):
        for r in runs.get(key, []):
            by_round.setdefault(r["round"], [None, None])[slot] = metric(r)
    return median([a / b for a, b in by_round.values() if a and b])

print()
print("paired per round, TPS (tandem/haproxy):",
      "  ".join(f"{w} {m} {fmt(paired((w, m, 'tandem'), (w, m, 'haproxy')), '.3f')}" for w, m in seen))
print("paired per round, CPU per statement (tandem/haproxy):",
      "  ".join(f"{w} {m} {fmt(paired((w, m, 'tandem'), (w, m, 'haproxy'), run_cpu_us), '.3f')}"
                for w, m in seen))
b_rows = [(w, m) for w, m in seen if runs.get((w, m, "tandem_b"))]
if b_rows:
    print()
    print("second build (TANDEM_BIN_B) in the same run:")
    cols = ["workload", "mode", "tandem TPS", "tandem_b TPS", "tandem/tandem_b (paired)",
            "tandem_b/haproxy (paired)", "tandem CPU us/stmt", "tandem_b CPU us/stmt",
            "CPU tandem/tandem_b (paired)"]
    rows = []
    for w, m in b_rows:
        rows.append([w, m, fmt(tps((w, m, "tandem")), ".0f"), fmt(tps((w, m, "tandem_b")), ".0f"),
                     fmt(paired((w, m, "tandem"), (w, m, "tandem_b")), ".3f"),
                     fmt(paired((w, m, "tandem_b"), (w, m, "haproxy")), ".3f"),
                     fmt(cpu_us_per_stmt((w, m, "tandem")), ".1f"),
                     fmt(cpu_us_per_stmt((w, m, "tandem_b")), ".1f"),
                     fmt(paired((w, m, "tandem"), (w, m, "tandem_b"), run_cpu_us), ".3f")])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print(line(cols))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
tls = [(w, m) for w, m in seen if runs.get((w, m, "tandem_tls"))]
if tls:
    print()
    print("TLS on every hop (client -> MariaDB; client -> Tandem -> MariaDB):")
    cols = ["workload", "mode", "direct TLS TPS", "tandem TLS TPS", "tandem/direct",
            "tandem TLS CPU us/stmt", "tandem plain CPU us/stmt"]
    rows = []
    for w, m in tls:
        d, t = tps((w, m, "direct_tls")), tps((w, m, "tandem_tls"))
        rows.append([w, m, fmt(d, ".0f"), fmt(t, ".0f"), fmt(t / d if d else float("nan"), ".3f"),
                     fmt(cpu_us_per_stmt((w, m, "tandem_tls")), ".1f"),
                     fmt(cpu_us_per_stmt((w, m, "tandem")), ".1f")])
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
    print(line(cols))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
PY
    echo
    echo "per statement, from one traced run of $PROFILE_EVENTS events each (strace -c -f attached to the" \
        "proxy, so timing differs from the runs above; allocations from tandem's /metrics):"
    python3 - "$profile" <<'PY'
import csv, sys

def per(x, q):
    try:
        return format(float(x) / float(q), ".2f")
    except (ValueError, ZeroDivisionError):
        return "-"

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
cols = ["workload", "mode", "target", "statements", "syscalls/stmt", "futex/stmt", "allocs/stmt"]
table = [[r["workload"], r["mode"], r["target"], r["queries"], per(r["syscalls"], r["queries"]),
          per(r["futex"], r["queries"]), per(r["allocations"], r["queries"])] for r in rows]
if not table:
    print("  (skipped: PROFILE_EVENTS=0)")
    sys.exit()
widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
line = lambda cells: "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
print(line(cols))
print(line(["-" * w for w in widths]))
for t in table:
    print(line(t))
PY
    echo
    echo "user-space instructions per statement (callgrind, one client thread; median of 3 runs of" \
        "$INSTR_EVENTS point-select or $(((INSTR_EVENTS + 9) / 10)) read_only events, the runs' range in brackets):"
    python3 - "$instr" <<'PY'
import csv, sys

import statistics

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
runs = {}
for r in rows:
    try:
        runs.setdefault((r["workload"], r["mode"], r["target"]), []).append(
            float(r["instructions"]) / float(r["queries"]))
    except (ValueError, ZeroDivisionError):
        pass
per = {k: statistics.median(v) for k, v in runs.items()}
spread = {k: f"[{min(v):.0f}-{max(v):.0f}]" for k, v in runs.items()}
if not rows:
    print("  (skipped: INSTR_EVENTS=0)")
    sys.exit()
has_b = any(k[2] == "tandem_b" for k in per)
cols = ["workload", "mode", "haproxy", "tandem", "tandem/haproxy", "tandem runs"] + (
    ["tandem_b", "tandem/tandem_b", "tandem_b runs"] if has_b else [])
seen = []
for r in rows:
    if (r["workload"], r["mode"]) not in seen:
        seen.append((r["workload"], r["mode"]))
fmt = lambda x, spec: "-" if x is None else format(x, spec)
ratio = lambda a, b: a / b if a is not None and b else None
table = []
for w, m in seen:
    h, t, b = (per.get((w, m, x)) for x in ("haproxy", "tandem", "tandem_b"))
    row = [w, m, fmt(h, ".0f"), fmt(t, ".0f"), fmt(ratio(t, h), ".3f"), spread.get((w, m, "tandem"), "-")]
    if has_b:
        row += [fmt(b, ".0f"), fmt(ratio(t, b), ".3f"), spread.get((w, m, "tandem_b"), "-")]
    table.append(row)
widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
line = lambda cells: "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
print(line(cols))
print(line(["-" * w for w in widths]))
for t in table:
    print(line(t))
PY
    echo
    echo "raw runs (round, workload, mode, target, tps, queries, proxy cpu ticks @ $clk_tck/s):"
    tail -n +2 "$raw" | sed 's/^/  /'
} >"$result"

echo
cat "$result"
echo
say "written to ${result#"$repo"/}"
