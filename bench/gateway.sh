#!/usr/bin/env bash
# Gateway benchmark (issue 3): REST/JSON calls/s through rzero's gateway, in-process (gRPC and
# REST on one port) and as a proxy process in front of a gRPC server, against direct gRPC calls
# (rzero client -> rzero server) in the same run; HTTP/1.1 and h2c, GET with a path variable and
# POST with a JSON body. Targets: in-process >= 0.70, proxy >= 0.50 of direct gRPC. Not run in
# CI; see bench/README.md.
#
# Usage: bench/gateway.sh        (from anywhere)
# Environment:
#   ROUNDS=3            rounds; every configuration runs once per round, interleaved
#   WARMUP=2 DURATION=8 seconds of warm-up and of measurement per run
#   CONNS=4 CONCURRENCY=64   the Rust load generator: N tasks over M connections (gRPC, h2c);
#                            HTTP/1.1 opens one keep-alive connection per task
#   H2LOAD_ARGS="-c 16 -m 16" H1LOAD_ARGS="-c 64 -m 1"   h2load runs (skipped without h2load)
#   SERVER_CPU=0 LOAD_CPU=1  cores for servers and for load generators (taskset)
#   PROXY_CPU=$SERVER_CPU    core of the proxy process (default: shares the server's core, so
#                            every configuration has one core for all the serving work)
#   UPSTREAM_CPU=$SERVER_CPU core of the proxy's upstream gRPC server; UPSTREAM_CPU=1 gives the
#                            proxy a core of its own, the upstream sharing the load's
#   SKIP_H2LOAD=1 / SKIP_LOAD=1  run only the other part
#   ONLY='grpc|proxy-.*'     run only the configurations whose names match (a bash regex)
#
# Everything goes under target/bench/gateway/ (git-ignored): a private copy of the binary,
# per-run logs, raw.txt with every run, and results.txt with the summary printed at the end.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=$REPO/target/bench/gateway
ROUNDS=${ROUNDS:-3}
WARMUP=${WARMUP:-2}
DURATION=${DURATION:-8}
CONNS=${CONNS:-4}
CONCURRENCY=${CONCURRENCY:-64}
H2LOAD_ARGS=${H2LOAD_ARGS:--c 16 -m 16}
H1LOAD_ARGS=${H1LOAD_ARGS:--c 64 -m 1}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PROXY_CPU=${PROXY_CPU:-$SERVER_CPU}
UPSTREAM_CPU=${UPSTREAM_CPU:-$SERVER_CPU}
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
# One gRPC frame: uncompressed, 7 bytes, HelloRequest { name: "world" }; the REST POST body.
printf '\x00\x00\x00\x00\x07\x0a\x05world' >"$OUT/request.bin"
printf '{"name":"world"}' >"$OUT/request.json"
HAVE_H2LOAD=0
if [[ ${SKIP_H2LOAD:-0} != 1 ]]; then
    if command -v h2load >/dev/null; then
        HAVE_H2LOAD=1
    else
        log "h2load not found (Debian package nghttp2-client): server-only runs skipped"
    fi
fi

# --- processes -----------------------------------------------------------------------------
PIDS=()
stop_servers() {
    local pid i
    # The proxy (started last) first, then its upstream.
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid=${PIDS[i]}
        kill -TERM "$pid" 2>/dev/null || true
        local n
        for ((n = 0; n < 50; n++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap stop_servers EXIT

# start LOG CPU ARGS...: runs `rpcbench ARGS` on CPU; adds its pid to PIDS, sets PORT.
start() {
    local logfile=$1 cpu=$2 i pid
    shift 2
    : >"$logfile"
    taskset -c "$cpu" "$BIN" "$@" >"$logfile" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    PORT=""
    for ((i = 0; i < 100; i++)); do
        PORT=$(awk '/^PORTS /{ print $2 }' "$logfile")
        [[ -n $PORT ]] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "did not start: rpcbench $*" >&2
    cat "$logfile" >&2
    exit 1
}

# serve KIND: starts what KIND needs and sets PORT to where the load goes.
#   grpc: plain rzero server; gw: rzero server with the gateway on the same port;
#   web: rzero server with gRPC-Web; tonic-web: tonic server with tonic-web's layer;
#   proxy: plain rzero server and a gateway-proxy process in front of it;
#   web-proxy: the same, the proxy also answering gRPC-Web.
serve() {
    case $1 in
    grpc) start "$OUT/logs/server-grpc.log" "$SERVER_CPU" server --impl rzero ;;
    gw) start "$OUT/logs/server-gw.log" "$SERVER_CPU" server --impl rzero-gateway ;;
    web) start "$OUT/logs/server-web.log" "$SERVER_CPU" server --impl rzero-grpc-web ;;
    tonic-web) start "$OUT/logs/server-tonic-web.log" "$SERVER_CPU" server --impl tonic-web ;;
    proxy)
        start "$OUT/logs/server-upstream.log" "$UPSTREAM_CPU" server --impl rzero
        start "$OUT/logs/server-proxy.log" "$PROXY_CPU" gateway-proxy --upstream "127.0.0.1:$PORT"
        ;;
    web-proxy)
        start "$OUT/logs/server-upstream.log" "$UPSTREAM_CPU" server --impl rzero
        start "$OUT/logs/server-web-proxy.log" "$PROXY_CPU" gateway-proxy --grpc-web --upstream "127.0.0.1:$PORT"
        ;;
    *) echo "unknown server kind $1" >&2 && exit 1 ;;
    esac
}

field() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'; }
record() { echo "$*" >>"$RAW"; echo "    $*" >&2; }

# Configurations: NAME | SERVER KIND | rpcbench load ARGS (`-`: h2load only) | h2load ARGS
# (after the -c/-m ones). The gRPC-Web rows compare rzero with tonic-web, same shape; h2load
# checks only the HTTP status, so their replies are checked by tests/tests/grpc_web.rs. The
# gRPC-Web proxy rows (the gateway proxy in front of a plain server) are compared with
# tonic-web in one process too: what the extra hop costs.
# `grpc` is the base of every ratio. `grpc-shaped-http1` is gRPC with the HTTP/1.1 runs' shape
# (one connection per caller, one call in flight on each), the second base for HTTP/1.1: the
# `grpc` runs multiplex many calls per connection, which HTTP/1.1 cannot, whatever serves it.
CONFIGS=(
    "grpc|grpc|--client rzero|$H2LOAD_ARGS -d $OUT/request.bin -H content-type:application/grpc -H te:trailers @/greeter.v1.Greeter/SayHello"
    "grpc-shaped-http1|grpc|--client rzero --conns $CONCURRENCY|$H1LOAD_ARGS -d $OUT/request.bin -H content-type:application/grpc -H te:trailers @/greeter.v1.Greeter/SayHello"
    "grpc@gw-server|gw|--client rzero|$H2LOAD_ARGS -d $OUT/request.bin -H content-type:application/grpc -H te:trailers @/greeter.v1.Greeter/SayHello"
    "inproc-get-http1|gw|--client http1|--h1 $H1LOAD_ARGS @/v1/greeter/world"
    "inproc-post-http1|gw|--client http1 --method POST|--h1 $H1LOAD_ARGS -d $OUT/request.json -H content-type:application/json @/v1/greeter"
    "inproc-get-h2c|gw|--client h2c|$H2LOAD_ARGS @/v1/greeter/world"
    "inproc-post-h2c|gw|--client h2c --method POST|$H2LOAD_ARGS -d $OUT/request.json -H content-type:application/json @/v1/greeter"
    "proxy-get-http1|proxy|--client http1|--h1 $H1LOAD_ARGS @/v1/greeter/world"
    "proxy-post-http1|proxy|--client http1 --method POST|--h1 $H1LOAD_ARGS -d $OUT/request.json -H content-type:application/json @/v1/greeter"
    "proxy-get-h2c|proxy|--client h2c|$H2LOAD_ARGS @/v1/greeter/world"
    "proxy-post-h2c|proxy|--client h2c --method POST|$H2LOAD_ARGS -d $OUT/request.json -H content-type:application/json @/v1/greeter"
    "grpc-web-h2c|web|-|$H2LOAD_ARGS -d $OUT/request.bin -H content-type:application/grpc-web+proto -H x-grpc-web:1 @/greeter.v1.Greeter/SayHello"
    "grpc-web-http1|web|-|--h1 $H1LOAD_ARGS -d $OUT/request.bin -H content-type:application/grpc-web+proto -H x-grpc-web:1 @/greeter.v1.Greeter/SayHello"
    "tonic-web-h2c|tonic-web|-|$H2LOAD_ARGS -d $OUT/request.bin -H content-type:application/grpc-web+proto -H x-grpc-web:1 @/greeter.v1.Greeter/SayHello"
    "tonic-web-http1|tonic-web|-|--h1 $H1LOAD_ARGS -d $OUT/request.bin -H content-type:application/grpc-web+proto -H x-grpc-web:1 @/greeter.v1.Greeter/SayHello"
    "grpc-web-proxy-h2c|web-proxy|-|$H2LOAD_ARGS -d $OUT/request.bin -H content-type:application/grpc-web+proto -H x-grpc-web:1 @/greeter.v1.Greeter/SayHello"
    "grpc-web-proxy-http1|web-proxy|-|--h1 $H1LOAD_ARGS -d $OUT/request.bin -H content-type:application/grpc-web+proto -H x-grpc-web:1 @/greeter.v1.Greeter/SayHello"
)

# The serving processes' CPU time (user + system, clock ticks, summed over PIDS).
cpu_ticks() {
    local pid t=0
    for pid in "${PIDS[@]}"; do
        t=$((t + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    echo "$t"
}
# measure_cpu PID: waits for the load generator PID, taking the servers' CPU time at the end
# of its warm-up (CPU0) and when it is done (CPU1); fails if the load generator failed.
measure_cpu() {
    sleep "$WARMUP"
    CPU0=$(cpu_ticks)
    wait "$1" || true
    CPU1=$(cpu_ticks)
}
# cpu_per_call RATE: `srv_cpu_us=` the servers' CPU microseconds per call in the measured
# window: a cost that does not depend on how much of its core the server got.
cpu_per_call() {
    awk -v t=$((CPU1 - CPU0)) -v hz="$(getconf CLK_TCK)" -v r="$1" -v d="$DURATION" \
        'BEGIN { printf "srv_cpu_us=%.1f", (r > 0 ? t / hz * 1e6 / (r * d) : 0) }'
}

# h2load_run NAME ARGS...: against PORT, on $LOAD_CPU; `@PATH` stands for the URL.
h2load_run() {
    local name=$1 out rate a args=()
    shift
    for a in "$@"; do
        if [[ $a == @* ]]; then args+=("http://127.0.0.1:$PORT${a#@}"); else args+=("$a"); fi
    done
    out=$OUT/logs/h2load-$name-$round.txt
    taskset -c "$LOAD_CPU" h2load -t 1 -D "$DURATION" --warm-up-time="$WARMUP" "${args[@]}" \
        >"$out" 2>&1 &
    measure_cpu $!
    rate=$(awk '/^finished in/ { print $4 }' "$out")
    if [[ -z $rate ]] || ! grep -q ' 0 failed, 0 errored' "$out" ||
        ! grep -Eq 'status codes: [0-9]+ 2xx, 0 3xx, 0 4xx, 0 5xx' "$out"; then
        echo "h2load failed ($name), see $out" >&2
        tail -n 8 "$out" >&2
        exit 1
    fi
    record "h2load round=$round config=$name rate=${rate%.*} $(cpu_per_call "${rate%.*}")"
}

# load_run NAME ARGS...: the Rust load generator on $LOAD_CPU against PORT.
load_run() {
    local name=$1 line
    shift
    taskset -c "$LOAD_CPU" "$BIN" load --addr "127.0.0.1:$PORT" --conns "$CONNS" \
        --concurrency "$CONCURRENCY" --warmup "$WARMUP" --duration "$DURATION" "$@" \
        >"$OUT/load.out" &
    measure_cpu $!
    line=$(cat "$OUT/load.out")
    if [[ $(field errors "$line") != 0 ]]; then
        echo "load run $name had errors: $line" >&2
        exit 1
    fi
    record "load round=$round config=$name $line $(cpu_per_call "$(field rate "$line")")"
}

START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round of $ROUNDS (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    for entry in "${CONFIGS[@]}"; do
        IFS='|' read -r name kind load_args h2_args <<<"$entry"
        [[ -z ${ONLY:-} || $name =~ ^($ONLY)$ ]] || continue
        if [[ $HAVE_H2LOAD == 1 ]]; then
            serve "$kind"
            # shellcheck disable=SC2086
            h2load_run "$name" $h2_args
            stop_servers
        fi
        if [[ ${SKIP_LOAD:-0} != 1 && $load_args != - ]]; then
            serve "$kind"
            # shellcheck disable=SC2086
            load_run "$name" $load_args
            stop_servers
        fi
    done
done
END_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

# --- summary -------------------------------------------------------------------------------
values() { grep "^$1 " "$RAW" | grep -F " $2 " | while read -r l; do field "$3" "$l"; done; }
# ratio_median KIND NAME KEY: per-round ratios NAME/grpc of KEY's values (same round, same
# machine state), then their median; for srv_cpu_us the ratio is grpc/NAME, so that both read
# as "fraction of gRPC's calls/s".
ratio_median() {
    local kind=$1 name=$2 key=$3 base=${4:-grpc} r ratios=()
    for ((r = 1; r <= ROUNDS; r++)); do
        local a b
        a=$(field "$key" "$(grep "^$kind round=$r " "$RAW" | grep -F " config=$name " | head -n 1)")
        b=$(field "$key" "$(grep "^$kind round=$r " "$RAW" | grep -F " config=$base " | head -n 1)")
        [[ $key == srv_cpu_us ]] && { local t=$a; a=$b; b=$t; }
        [[ -n $a && -n $b ]] && ratios+=("$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')")
    done
    [[ ${#ratios[@]} -gt 0 ]] && echo "$(median "${ratios[@]}") (${ratios[*]})"
}
target() {
    case $1 in
    inproc-*) echo ">= 0.70" ;;
    proxy-*) echo ">= 0.50" ;;
    *) echo "" ;;
    esac
}
table() {
    local kind=$1 entry name
    for entry in "${CONFIGS[@]}"; do
        name=${entry%%|*}
        [[ -n $(values "$kind" "config=$name" rate) ]] || continue
        # shellcheck disable=SC2046
        printf '  %-18s %8s %7s' "$name" "$(median $(values "$kind" "config=$name" rate))" \
            "$(median $(values "$kind" "config=$name" srv_cpu_us))"
        if [[ $kind == load ]]; then
            # shellcheck disable=SC2046
            printf ' %7s %7s' "$(median $(values load "config=$name" p50_us))" \
                "$(median $(values load "config=$name" p99_us))"
        fi
        if [[ $name == grpc ]]; then
            echo "   (base)"
        else
            printf '   %-24s %-24s %s\n' "$(ratio_median "$kind" "$name" rate)" \
                "$(ratio_median "$kind" "$name" srv_cpu_us)" "$(target "$name")"
        fi
    done
}
# shaped KIND: the HTTP/1.1 runs against gRPC with the same connections and calls in flight.
shaped() {
    local kind=$1 entry name
    [[ -n $(values "$kind" "config=grpc-shaped-http1" rate) ]] || return 0
    echo "  HTTP/1.1 against grpc-shaped-http1 (gRPC, one connection per caller, one call in flight each):"
    for entry in "${CONFIGS[@]}"; do
        name=${entry%%|*}
        [[ $name == *-http1 && $name != grpc-* ]] || continue
        [[ -n $(values "$kind" "config=$name" rate) ]] || continue
        printf '  %-18s %16s   %-24s %-24s %s\n' "$name" "" "$(ratio_median "$kind" "$name" rate grpc-shaped-http1)" \
            "$(ratio_median "$kind" "$name" srv_cpu_us grpc-shaped-http1)" "$(target "$name")"
    done
}
# against_tonic_web KIND: rzero's gRPC-Web against tonic-web's, same shape, same round.
against_tonic_web() {
    local kind=$1 shape
    [[ -n $(values "$kind" "config=tonic-web-h2c" rate)$(values "$kind" "config=tonic-web-http1" rate) ]] || return 0
    echo "  gRPC-Web against tonic-web (tonic + GrpcWebLayer), same shape:"
    for name in grpc-web-h2c grpc-web-http1 grpc-web-proxy-h2c grpc-web-proxy-http1; do
        [[ -n $(values "$kind" "config=$name" rate) ]] || continue
        printf '  %-18s %16s   %-24s %-24s\n' "$name" "" \
            "$(ratio_median "$kind" "$name" rate "tonic-web-${name##*-}")" \
            "$(ratio_median "$kind" "$name" srv_cpu_us "tonic-web-${name##*-}")"
    done
}
{
    echo "gateway benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, rzero $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')"
    echo "load average: $START_LOAD at start, $END_LOAD at end; servers on cpu $SERVER_CPU, proxy on cpu $PROXY_CPU, its upstream on cpu $UPSTREAM_CPU, load on cpu $LOAD_CPU"
    echo "$ROUNDS rounds, interleaved; ${WARMUP}s warm-up + ${DURATION}s measured per run; medians over rounds;"
    echo "ratios to grpc (rzero client -> rzero server) taken within each round, then their median;"
    echo "cpu us: the serving processes' CPU time per call (proxy: both processes); cpu ratio:"
    echo "grpc's cpu us / this one's, i.e. the calls/s ratio if the server's core were the limit"
    if [[ $HAVE_H2LOAD == 1 ]]; then
        echo
        echo "server side only: h2load -t 1, gRPC and h2c $H2LOAD_ARGS, HTTP/1.1 $H1LOAD_ARGS"
        printf '  %-18s %8s %7s   %-24s %-24s %s\n' config "calls/s" "cpu us" \
            "calls/s ratio (rounds)" "cpu ratio (rounds)" target
        table h2load
        shaped h2load
        against_tonic_web h2load
    fi
    if [[ ${SKIP_LOAD:-0} != 1 ]]; then
        echo
        echo "client and server: rpcbench load, $CONCURRENCY tasks (gRPC, h2c: over $CONNS connections; HTTP/1.1: one each)"
        printf '  %-18s %8s %7s %7s %7s   %-24s %-24s %s\n' config "calls/s" "cpu us" "p50 us" \
            "p99 us" "calls/s ratio (rounds)" "cpu ratio (rounds)" target
        table load
        shaped load
    fi
    echo
    echo "every run: $RAW"
} | tee "$RESULTS"
