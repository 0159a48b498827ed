#!/usr/bin/env bash
# Codegen benchmark: protoc-gen-rzero vs protoc + protoc-gen-prost + protoc-gen-tonic on the
# Google Cloud v1 APIs (every google/cloud/*/v1/*.proto in google-proto-files@6.0.1), then a
# `cargo check` of everything protoc-gen-rzero wrote. Not run in CI; see bench/README.md.
#
# Usage: bench/codegen.sh            (from anywhere)
# Environment:
#   RUNS=3               timed runs per side; the median is reported
#   SKIP_COMPILE_CHECK=1 stop after the timings
#   BENCH_EDITION=2024   Rust edition of the compile-check crate
#
# Everything it makes lives under target/bench/ (git-ignored): the corpus, the anchor plugins
# (target/bench/tools), both outputs, the compile-check crate and its target dir, and
# results.txt with the summary printed at the end.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/target/bench
RUNS=${RUNS:-3}
EDITION=${BENCH_EDITION:-2024}
CORPUS_PKG=google-proto-files@6.0.1
ROOT=$BENCH/google-proto-files
OUT_ANCHOR=$BENCH/out-anchor
OUT_RZERO=$BENCH/out-rzero
TOOLS=$BENCH/tools
CHECK=$BENCH/compile-check
RESULTS=$BENCH/results.txt

log() { printf '==> %s\n' "$*" >&2; }
mkdir -p "$BENCH"

# --- 1. corpus ---------------------------------------------------------------------------
if [[ ! -d $ROOT/google/cloud ]]; then
    log "fetching $CORPUS_PKG"
    command -v npm >/dev/null || { echo "npm is needed to fetch the corpus" >&2; exit 1; }
    tarball=$(cd "$BENCH" && npm pack --silent "$CORPUS_PKG" | tail -n 1)
    rm -rf "$ROOT.tmp" && mkdir -p "$ROOT.tmp"
    tar -xzf "$BENCH/$tarball" -C "$ROOT.tmp" --strip-components=1
    mv "$ROOT.tmp" "$ROOT"
fi
# Names relative to the include root: both tools see the same import paths.
mapfile -t FILES < <(cd "$ROOT" && printf '%s\n' google/cloud/*/v1/*.proto | LC_ALL=C sort)
log "corpus: ${#FILES[@]} files under $ROOT"
if [[ ${#FILES[@]} -ne 866 ]]; then
    echo "warning: expected 866 files, found ${#FILES[@]}" >&2
fi

# --- 2. tools ----------------------------------------------------------------------------
if ! command -v protoc >/dev/null; then
    log "installing protobuf-compiler"
    sudo=""
    [[ $(id -u) -ne 0 ]] && sudo=sudo
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq protobuf-compiler
fi
if [[ ! -x $TOOLS/bin/protoc-gen-prost || ! -x $TOOLS/bin/protoc-gen-tonic ]]; then
    log "installing protoc-gen-prost and protoc-gen-tonic into $TOOLS"
    cargo install --locked --root "$TOOLS" protoc-gen-prost protoc-gen-tonic
fi
log "building protoc-gen-rzero (release)"
(cd "$REPO" && cargo build --release -p protoc-gen-rzero)
# A private copy: other work in the same checkout may rebuild target/release mid-benchmark.
# (Cargo builds into $CARGO_TARGET_DIR when that is set; a relative one is relative to $REPO.)
target_dir=${CARGO_TARGET_DIR:-target}
[[ $target_dir == /* ]] || target_dir=$REPO/$target_dir
mkdir -p "$BENCH/bin"
cp "$target_dir/release/protoc-gen-rzero" "$BENCH/bin/protoc-gen-rzero"
RZERO=$BENCH/bin/protoc-gen-rzero
# Two of the corpus' files bind path variables on streaming-request methods
# (aiplatform FeatureViewDirectWrite, discoveryengine StreamGenerateGroundedContent), which
# the REST gateway refuses as grpc-gateway does, so the default run would stop there.
# `no_gateway` generates what the anchor does (messages, servers, clients) without reading
# the rules; the descriptor sets for server reflection are still written.
RZERO_OPTS=(--opt no_gateway)

# --- 3. timings --------------------------------------------------------------------------
# time_side NAME OUT CMD...: runs CMD $RUNS times from $ROOT into a fresh OUT. Each run's wall
# clock and CPU (user + sys, children included: protoc's plugins are its children) goes to
# stderr; the medians of both are stored in ${NAME}_wall and ${NAME}_cpu. CMD's own stderr
# (protoc warns about unused imports hundreds of times) goes to OUT.stderr.
time_side() {
    local name=$1 out=$2
    shift 2
    local walls=() cpus=() i real user sys TIMEFORMAT='%R %U %S' timing
    timing=$(mktemp)
    for ((i = 1; i <= RUNS; i++)); do
        rm -rf "$out" && mkdir -p "$out"
        # (The inner braces matter: bash prints nothing for `time (subshell) 2>file`.)
        if ! { time { (cd "$ROOT" && "$@") 2>"$out.stderr"; }; } 2>"$timing"; then
            echo "failed: $*" >&2
            tail -n 20 "$out.stderr" >&2
            exit 1
        fi
        read -r real user sys <"$timing"
        walls+=("$real")
        cpus+=("$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')")
        printf '    run %d: %ss wall, %ss cpu\n' "$i" "$real" "${cpus[-1]}" >&2
    done
    rm -f "$timing"
    printf -v "${name}_wall" '%s' "$(median "${walls[@]}")"
    printf -v "${name}_cpu" '%s' "$(median "${cpus[@]}")"
}
median() { printf '%s\n' "$@" | sort -g | awk '{ t[NR] = $1 } END { print t[int((NR + 1) / 2)] }'; }
count_lines() { find "$1" -name '*.rs' -print0 | xargs -0 cat | wc -l; }
count_files() { find "$1" -name '*.rs' | wc -l; }

# One untimed run of each side first (warms the page cache; for rzero it also checks that it
# can read the corpus at all).
log "warm-up: protoc-gen-rzero generate -I $ROOT"
RZERO_ROOT=$ROOT
rzero_note=""
if ! (cd "$ROOT" && "$RZERO" generate "${RZERO_OPTS[@]}" -I "$ROOT" "${FILES[@]}" -o "$OUT_RZERO") 2>"$OUT_RZERO.stderr"; then
    warm_err=$(tail -n 1 "$OUT_RZERO.stderr")
    # Seen before commit 82397e8: google-proto-files ships a google/protobuf/descriptor.proto
    # that protox cannot parse (options on extension ranges), and include dirs came before the
    # bundled well-known types. Report it, then fall back to the same root without its
    # google/protobuf, so the copies bundled in protoc-gen-rzero are used.
    printf 'protoc-gen-rzero FAILED on the package root:\n    %s\n' "$warm_err" >&2
    RZERO_ROOT=$BENCH/root-without-google-protobuf
    log "retrying rzero with $RZERO_ROOT (the package root minus google/protobuf)"
    rm -rf "$RZERO_ROOT" && mkdir -p "$RZERO_ROOT/google"
    for entry in "$ROOT"/* "$ROOT"/google/*; do
        case $entry in
            "$ROOT"/google | "$ROOT"/google/protobuf) ;;
            "$ROOT"/google/*) ln -s "$entry" "$RZERO_ROOT/google/" ;;
            *) ln -s "$entry" "$RZERO_ROOT/" ;;
        esac
    done
    if ! (cd "$ROOT" && "$RZERO" generate "${RZERO_OPTS[@]}" -I "$RZERO_ROOT" "${FILES[@]}" -o "$OUT_RZERO") 2>"$OUT_RZERO.stderr"; then
        echo "protoc-gen-rzero failed again:" >&2
        tail -n 20 "$OUT_RZERO.stderr" >&2
        exit 1
    fi
    rzero_note="NOTE: rzero failed on the package root (${warm_err}); its numbers use -I $RZERO_ROOT"
fi
log "warm-up: protoc"
mkdir -p "$OUT_ANCHOR"
(cd "$ROOT" && protoc -I "$ROOT" \
    --plugin=protoc-gen-prost="$TOOLS/bin/protoc-gen-prost" \
    --plugin=protoc-gen-tonic="$TOOLS/bin/protoc-gen-tonic" \
    --prost_out="$OUT_ANCHOR" --tonic_out="$OUT_ANCHOR" "${FILES[@]}") 2>/dev/null || true

log "anchor: protoc $(protoc --version | awk '{print $2}') + protoc-gen-prost + protoc-gen-tonic, $RUNS runs"
time_side anchor "$OUT_ANCHOR" protoc -I "$ROOT" \
    --plugin=protoc-gen-prost="$TOOLS/bin/protoc-gen-prost" \
    --plugin=protoc-gen-tonic="$TOOLS/bin/protoc-gen-tonic" \
    --prost_out="$OUT_ANCHOR" --tonic_out="$OUT_ANCHOR" "${FILES[@]}"

log "rzero: protoc-gen-rzero generate, $RUNS runs"
time_side rzero "$OUT_RZERO" "$RZERO" generate "${RZERO_OPTS[@]}" -I "$RZERO_ROOT" "${FILES[@]}" -o "$OUT_RZERO"

anchor_lines=$(count_lines "$OUT_ANCHOR")
rzero_lines=$(count_lines "$OUT_RZERO")
ratio=$(awk -v r="$rzero_wall" -v a="$anchor_wall" 'BEGIN { printf "%.2f", r / a }')
cpu_ratio=$(awk -v r="$rzero_cpu" -v a="$anchor_cpu" 'BEGIN { printf "%.2f", r / a }')
verdict=$(awk -v x="$ratio" 'BEGIN { print (x <= 0.5 ? "meets" : "misses") }')

{
    echo "codegen benchmark, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, rzero $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo '?')"
    echo "corpus: ${#FILES[@]} files (google/cloud/*/v1/*.proto, $CORPUS_PKG); medians of $RUNS runs after one warm-up"
    printf '%-8s %12s %12s %10s %8s\n' side "wall s (med)" "cpu s (med)" lines ".rs files"
    printf '%-8s %12s %12s %10s %8s\n' anchor "$anchor_wall" "$anchor_cpu" "$anchor_lines" "$(count_files "$OUT_ANCHOR")"
    printf '%-8s %12s %12s %10s %8s\n' rzero "$rzero_wall" "$rzero_cpu" "$rzero_lines" "$(count_files "$OUT_RZERO")"
    echo "ratio rzero/anchor: $ratio wall ($verdict the <= 0.5 target), $cpu_ratio cpu"
    [[ -z $rzero_note ]] || echo "$rzero_note"
} | tee "$RESULTS"

if [[ ${SKIP_COMPILE_CHECK:-0} == 1 ]]; then
    exit 0
fi

# --- 4. compile check --------------------------------------------------------------------
log "compile check: cargo check of $OUT_RZERO/mod.rs"
mkdir -p "$CHECK/src"
cat >"$CHECK/Cargo.toml" <<EOF
[package]
name = "rzero-bench-compile-check"
version = "0.0.0"
edition = "$EDITION"
publish = false

# Its own workspace, so the main one neither includes nor builds it.
[workspace]

[dependencies]
rzero = { path = "$REPO/runtime" }
prost = "0.14"
EOF
printf '#![allow(warnings)]\ninclude!("%s/mod.rs");\n' "$OUT_RZERO" >"$CHECK/src/lib.rs"
# Start from the main lockfile so the runtime's dependencies resolve to the same versions.
[[ -f $CHECK/Cargo.lock ]] || cp "$REPO/Cargo.lock" "$CHECK/Cargo.lock"

check_log=$BENCH/compile-check.log
set +e
(cd "$CHECK" && CARGO_TARGET_DIR=$BENCH/target cargo check --message-format short) >"$check_log" 2>&1
check_status=$?
set -e

# Package files: every generated .rs but the module tree.
total=$(find "$OUT_RZERO" -maxdepth 1 -name '*.rs' ! -name mod.rs | wc -l)
# Short-format errors look like `PATH:LINE:COL: error[E0412]: message`.
errors=$(grep -E '^[^ ]+:[0-9]+:[0-9]+: error' "$check_log" || true)
failing=$(printf '%s\n' "$errors" | grep -F "$OUT_RZERO/" | sed -E 's#^.*/([^/:]+\.rs):[0-9]+:[0-9]+: .*#\1#' | sort -u || true)
n_failing=$(printf '%s' "$failing" | grep -c . || true)
n_errors=$(printf '%s' "$errors" | grep -c . || true)
elsewhere=$(printf '%s\n' "$errors" | grep -vF "$OUT_RZERO/" | grep -c . || true)
{
    echo "compile check (edition $EDITION): cargo check exit $check_status, $n_errors error(s)"
    echo "  $n_failing of $total package files have errors ($elsewhere located error(s) outside them)"
    if [[ $n_failing -gt 0 ]]; then
        echo "  first failing files: $(printf '%s\n' "$failing" | head -n 10 | paste -sd ' ')"
        echo "  first distinct error messages:"
        printf '%s\n' "$errors" | sed -E 's#^[^ ]+:[0-9]+:[0-9]+: ##' | awk '!seen[$0]++' | head -n 8 | sed 's/^/    /'
    fi
    if [[ $check_status -ne 0 && $n_errors -eq 0 ]]; then
        echo "  cargo failed without a located error; last lines of $check_log:"
        tail -n 15 "$check_log" | sed 's/^/    /'
    fi
    echo "  full log: $check_log"
} | tee -a "$RESULTS"
