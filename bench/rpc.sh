#!/usr/bin/env bash
# RPC benchmark (issue 4): (a) unary calls/s through rzero's generated client and server
# against a plain tonic client and server for the same service, with and without a pass-through
# interceptor; (b) p50/p90/p99 with three backends, one ten times slower, p2c_ewma against
# round_robin, at several numbers of concurrent callers. Not run in CI; see bench/README.md.
#
# Usage: bench/rpc.sh            (from anywhere)
# Environment:
#   ROUNDS=3            rounds; every configuration runs once per round, interleaved
#   WARMUP=2 DURATION=8 seconds of warm-up and of measurement per run
#   CONNS=4 CONCURRENCY=64   the Rust load generator: N tasks over M connections
#   H2LOAD_ARGS="-c 16 -m 16" h2load clients and streams per client (skipped without h2load)
#   SERVER_CPU=0 LOAD_CPU=1  cores for servers and for load generators (taskset)
#   BAL_CONCURRENCY="1 2 4 8"  concurrent callers in (b): one table each
#   BAL_DELAYS_US=1000,1000,10000
#   BAL_WARMUP=3 BAL_DURATION=10
#   SKIP_A=1 / SKIP_B=1 run only the other part
#
# Everything goes under target/bench/rpc/ (git-ignored): the crate's target dir, a private copy
# of the binary, per-run logs, and results.txt with the summary printed at the end.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/target/bench/rpc
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
DURATION=${DURATION:-8}
CONNS=${CONNS:-4}
CONCURRENCY=${CONCURRENCY:-64}
H2LOAD_ARGS=${H2LOAD_ARGS:--c 16 -m 16}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
BAL_CONCURRENCY=${BAL_CONCURRENCY:-1 2 4 8}
BAL_DELAYS_US=${BAL_DELAYS_US:-1000,1000,10000}
BAL_WARMUP=${BAL_WARMUP:-3}
BAL_DURATION=${BAL_DURATION:-10}
RESULTS=$OUT/results.txt
RAW=$OUT/raw.txt

log() { printf '==> %s\n' "$*" >&2; }
mkdir -p "$OUT/logs"
: >"$RAW"

# --- build ---------------------------------------------------------------------------------
log "building bench/rpc (release)"
(cd "$REPO/bench/rpc" && CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$OUT/target} cargo build --release --quiet)
# A private copy: a concurrent rebuild cannot swap the binary mid-run.
cp "${CARGO_TARGET_DIR:-$OUT/target}/release/rzero-rpcbench" "$OUT/rpcbench"
BIN=$OUT/rpcbench
# One gRPC frame: uncompressed, 7 bytes, HelloRequest { name: "world" }.
printf '\x00\x00\x00\x00\x07\x0a\x05world' >"$OUT/request.bin"
HAVE_H2LOAD=0
if command -v h2load >/dev/null; then
    HAVE_H2LOAD=1
else
    log "h2load not found (Debian package nghttp2-client): server-only runs skipped"
fi

# --- processes -----------------------------------------------------------------------------
SERVER_PID=""
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=""
    fi
}
trap stop_server EXIT

# start_server LOG ARGS...: runs `rpcbench ARGS` on $SERVER_CPU; sets SERVER_PID and PORTS.
start_server() {
    local logfile=$1 i
    shift
    : >"$logfile"
    taskset -c "$SERVER_CPU" "$BIN" "$@" >"$logfile" 2>&1 &
    SERVER_PID=$!
    PORTS=""
    for ((i = 0; i < 100; i++)); do
        PORTS=$(awk '/^PORTS /{ print $2 }' "$logfile")
        [[ -n $PORTS ]] && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not start: rpcbench $*" >&2
    cat "$logfile" >&2
    exit 1
}

field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'; }
record() { echo "$*" >>"$RAW"; echo "    $*" >&2; }

# h2load_run NAME [extra h2load args]: against the running server, on $LOAD_CPU.
h2load_run() {
    local name=$1 out rate
    shift
    out=$OUT/logs/h2load-$name-$round.txt
    # shellcheck disable=SC2086
    taskset -c "$LOAD_CPU" h2load $H2LOAD_ARGS -t 1 -D "$DURATION" --warm-up-time="$WARMUP" \
        -d "$OUT/request.bin" -H 'content-type: application/grpc' -H 'te: trailers' "$@" \
        "http://127.0.0.1:$PORTS/greeter.v1.Greeter/SayHello" >"$out" 2>&1 || true
    rate=$(awk '/^finished in/ { print $4 }' "$out")
    if [[ -z $rate ]] || ! grep -q ' 0 failed, 0 errored' "$out"; then
        echo "h2load failed ($name), see $out" >&2
        tail -n 5 "$out" >&2
        exit 1
    fi
    record "h2load round=$round server=$name rate=${rate%.*}"
}

# load_run NAME ARGS...: the Rust load generator on $LOAD_CPU against the running server.
load_run() {
    local name=$1 line
    shift
    line=$(taskset -c "$LOAD_CPU" "$BIN" load --addr "127.0.0.1:$PORTS" --conns "$CONNS" \
        --concurrency "$CONCURRENCY" --warmup "$WARMUP" --duration "$DURATION" "$@")
    if [[ $(field errors "$line") != 0 ]]; then
        echo "load run $name had errors: $line" >&2
        exit 1
    fi
    record "load round=$round pair=$name $line"
}

# --- (a) calls per second ------------------------------------------------------------------
# Pairs for the Rust load generator: NAME CLIENT-ARGS SERVER-ARGS. The cross pairs say which
# side a difference comes from.
PAIRS=(
    "tonic|--client tonic|--impl tonic"
    "rzero|--client rzero|--impl rzero"
    "rzero+ic|--client rzero --interceptor|--impl rzero --interceptor"
    "rzero-client>tonic-server|--client rzero|--impl tonic"
    "tonic-client>rzero-server|--client tonic|--impl rzero"
)
# Servers for h2load: NAME SERVER-ARGS EXTRA-H2LOAD-ARGS.
H2_SERVERS=(
    "tonic|--impl tonic|"
    "rzero|--impl rzero|"
    "rzero+ic|--impl rzero --interceptor|"
    "rzero-gzip|--impl rzero|-H grpc-accept-encoding:gzip"
)
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ ${SKIP_A:-0} != 1 ]]; then
    for ((round = 1; round <= ROUNDS; round++)); do
        log "(a) round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
        if [[ $HAVE_H2LOAD == 1 ]]; then
            for entry in "${H2_SERVERS[@]}"; do
                IFS='|' read -r name server_args h2_args <<<"$entry"
                # shellcheck disable=SC2086
                start_server "$OUT/logs/server-h2-$name.log" server $server_args
                # shellcheck disable=SC2086
                h2load_run "$name" $h2_args
                stop_server
            done
        fi
        for entry in "${PAIRS[@]}"; do
            IFS='|' read -r name client_args server_args <<<"$entry"
            # shellcheck disable=SC2086
            start_server "$OUT/logs/server-$name.log" server $server_args
            # shellcheck disable=SC2086
            load_run "$name" $client_args
            stop_server
        done
    done
fi

# --- (b) p2c_ewma against round_robin with one slow backend --------------------------------
BAL_POLICIES="p2c_ewma round_robin"
if [[ ${SKIP_B:-0} != 1 ]]; then
    start_server "$OUT/logs/backends.log" backends --delays-us "$BAL_DELAYS_US"
    TARGET="static:///$(tr ',' '\n' <<<"$PORTS" | sed 's/^/127.0.0.1:/' | paste -sd,)"
    for ((round = 1; round <= ROUNDS; round++)); do
        log "(b) round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
        for callers in $BAL_CONCURRENCY; do
            for policy in $BAL_POLICIES; do
                line=$(taskset -c "$LOAD_CPU" "$BIN" balance --target "$TARGET" --policy "$policy" \
                    --concurrency "$callers" --warmup "$BAL_WARMUP" --duration "$BAL_DURATION")
                record "balance round=$round callers=$callers policy=$policy $line"
            done
        done
    done
    stop_server
fi
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# --- summary -------------------------------------------------------------------------------
# values KIND SELECTOR KEY: that key from every raw line of KIND matching SELECTOR.
values() { grep "^$1 " "$RAW" | grep -F " $2 " | while read -r l; do field "$3" "$l"; done; }
# Per-round ratios of NAME to BASE (same round, same machine state), then their median.
ratio_median() {
    local kind=$1 key=$2 name=$3 base=$4 r ratios=()
    for ((r = 1; r <= ROUNDS; r++)); do
        local a b
        a=$(grep "^$kind round=$r " "$RAW" | grep -F " $key=$name " | head -n 1 | sed 's/.* rate=\([0-9]*\).*/\1/')
        b=$(grep "^$kind round=$r " "$RAW" | grep -F " $key=$base " | head -n 1 | sed 's/.* rate=\([0-9]*\).*/\1/')
        [[ -n $a && -n $b ]] && ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a / b }')")
    done
    [[ ${#ratios[@]} -gt 0 ]] && echo "$(median "${ratios[@]}") (rounds: ${ratios[*]})"
}
{
    echo "rpc benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, rzero $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')"
    echo "load average: $START_LOAD at start, $END_LOAD at end; servers on cpu $SERVER_CPU, load on cpu $LOAD_CPU"
    echo "$ROUNDS rounds, interleaved; ${WARMUP}s warm-up + ${DURATION}s measured per run; medians over rounds"
    if [[ ${SKIP_A:-0} != 1 ]]; then
        if [[ $HAVE_H2LOAD == 1 ]]; then
            echo
            echo "(a1) server only: h2load $H2LOAD_ARGS -t 1 -> one server"
            printf '  %-28s %10s\n' server "calls/s"
            for entry in "${H2_SERVERS[@]}"; do
                name=${entry%%|*}
                # shellcheck disable=SC2046
                printf '  %-28s %10s\n' "$name" "$(median $(values h2load "server=$name" rate))"
            done
            for name in rzero rzero+ic rzero-gzip; do
                echo "  ratio $name/tonic: $(ratio_median h2load server "$name" tonic)"
            done
        fi
        echo
        echo "(a2) client and server: Rust load generator, $CONCURRENCY tasks over $CONNS connections"
        printf '  %-28s %10s %8s %8s %8s\n' "client>server" "calls/s" "p50 us" "p90 us" "p99 us"
        for entry in "${PAIRS[@]}"; do
            name=${entry%%|*}
            # shellcheck disable=SC2046
            printf '  %-28s %10s %8s %8s %8s\n' "$name" \
                "$(median $(values load "pair=$name" rate))" "$(median $(values load "pair=$name" p50_us))" \
                "$(median $(values load "pair=$name" p90_us))" "$(median $(values load "pair=$name" p99_us))"
        done
        for name in rzero rzero+ic rzero-client\>tonic-server tonic-client\>rzero-server; do
            echo "  ratio $name / tonic: $(ratio_median load pair "$name" tonic)"
        done
        echo "  target: rzero >= 0.95 of tonic"
    fi
    if [[ ${SKIP_B:-0} != 1 ]]; then
        echo
        for callers in $BAL_CONCURRENCY; do
            echo "(b) three rzero backends (service time ${BAL_DELAYS_US} us), $callers concurrent callers, one client"
            printf '  %-12s %10s %8s %8s %8s   %s\n' policy "calls/s" "p50 us" "p90 us" "p99 us" "calls per backend (last round)"
            for policy in $BAL_POLICIES; do
                key="callers=$callers policy=$policy"
                last=$(grep "^balance round=$ROUNDS $key " "$RAW")
                # shellcheck disable=SC2046
                printf '  %-12s %10s %8s %8s %8s   %s\n' "$policy" \
                    "$(median $(values balance "$key" rate))" "$(median $(values balance "$key" p50_us))" \
                    "$(median $(values balance "$key" p90_us))" "$(median $(values balance "$key" p99_us))" \
                    "$(tr ' ' '\n' <<<"$last" | grep -E '^b[0-9]+_(calls|mean_us)=' | paste -sd' ')"
            done
            rr=$(median $(values balance "callers=$callers policy=round_robin" p99_us))
            p2c=$(median $(values balance "callers=$callers policy=p2c_ewma" p99_us))
            echo "  p99 p2c_ewma / round_robin: $(awk -v a="$p2c" -v b="$rr" 'BEGIN { printf "%.3f", a / b }') (target <= 0.2)"
            echo
        done
    fi
    echo
    echo "every run: $RAW"
} | tee "$RESULTS"
