#!/usr/bin/env bash
# The webhook's acknowledgement throughput at two revisions, side by side in one run (BENCHMARKS.md,
# "Webhook ack throughput").
# Usage: scripts/bench-ack-compare.sh [BEFORE [AFTER]]    (defaults: c39204a HEAD)
#
# Each revision is checked out in its own git worktree under $BENCH_DIR/src-<sha> and built there
# (release, its own target dir $BENCH_DIR/target-<sha>); a revision whose binaries exist is not
# rebuilt. Then the runs alternate: for each round and each mode (worker off, worker on), BEFORE's
# server, then AFTER's, each on a fresh data dir with the same ports and environment. The load
# generator is AFTER's when its source and the request signing are the same at both revisions, so
# only the server differs. Prints a markdown table (one row per run) and the medians per revision
# and mode; everything also goes to $BENCH_DIR/results-<time>.md.
#
# Who is served (from the people-and-identities change on): without WELLBEING_PEOPLE or
# SLACK_USER_ID the first person who writes is enrolled and everyone else is refused, which would
# spare AFTER's worker the engine for 499 of the 500 load users. So every server gets
# WELLBEING_PEOPLE naming the load generator's users (slack:TLOAD:ULOAD0 ... ULOAD<USERS-1>), and
# AFTER's worker processes and answers each of them as BEFORE's does (BEFORE ignores the variable).
#
# Settings (environment): ROUNDS (3), BENCH_SECONDS (10), CONNECTIONS (48), USERS (500, as the load
# generator's default), BENCH_DIR (/tmp/wb-ackbench), PORT (18082), SLACK_PORT (18090, the fake
# Slack the load generator serves when the worker is on). Everything listens on 127.0.0.1.
set -euo pipefail

BEFORE=${1:-c39204a}
AFTER=${2:-HEAD}
ROUNDS=${ROUNDS:-3}
BENCH_SECONDS=${BENCH_SECONDS:-10}
CONNECTIONS=${CONNECTIONS:-48}
USERS=${USERS:-500}
BENCH_DIR=${BENCH_DIR:-/tmp/wb-ackbench}
PORT=${PORT:-18082}
SLACK_PORT=${SLACK_PORT:-18090}

repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
mkdir -p "$BENCH_DIR"

sha_of() { git -C "$repo" rev-parse --short=12 "$1^{commit}"; }
before_sha=$(sha_of "$BEFORE")
after_sha=$(sha_of "$AFTER")
if [[ $before_sha == "$after_sha" ]]; then
  echo "BEFORE ($BEFORE) and AFTER ($AFTER) are the same commit $before_sha" >&2
  exit 2
fi

say() { echo "== $*" >&2; }

# Build `wellbeing` and the `loadgen` example of one revision in its own worktree and target dir.
build() {
  local sha=$1 src=$BENCH_DIR/src-$1 target=$BENCH_DIR/target-$1
  if [[ -x $target/release/wellbeing && -x $target/release/examples/loadgen ]]; then
    say "$sha: binaries already built ($target/release)"
    return
  fi
  if [[ ! -d $src ]]; then
    git -C "$repo" worktree add --detach "$src" "$sha" >&2
  fi
  # The package names the build command uses, checked at this revision.
  grep -q '^name = "wellbeing"$' "$src/cli/Cargo.toml" \
    || { echo "$sha: cli/Cargo.toml is not package wellbeing" >&2; exit 1; }
  grep -q '^name = "wellbeing-webhook"$' "$src/webhook/Cargo.toml" \
    || { echo "$sha: webhook/Cargo.toml is not package wellbeing-webhook" >&2; exit 1; }
  [[ -f $src/webhook/examples/loadgen.rs ]] || { echo "$sha: no webhook/examples/loadgen.rs" >&2; exit 1; }
  say "$sha: building release binaries in $src (target $target)"
  (cd "$src" && CARGO_TARGET_DIR=$target cargo build --release --locked \
    -p wellbeing -p wellbeing-webhook --example loadgen --bin wellbeing) >&2
}

build "$before_sha"
build "$after_sha"

server_before=$BENCH_DIR/target-$before_sha/release/wellbeing
server_after=$BENCH_DIR/target-$after_sha/release/wellbeing
# The same load generator against both servers when what it sends is built from the same code.
if git -C "$repo" diff --quiet "$before_sha" "$after_sha" -- webhook/examples/loadgen.rs webhook/src/slack/signature.rs; then
  loadgen_before=$BENCH_DIR/target-$after_sha/release/examples/loadgen
  loadgen_after=$loadgen_before
  loadgen_note="one load generator for both servers ($after_sha's): webhook/examples/loadgen.rs and webhook/src/slack/signature.rs are identical at $before_sha and $after_sha, so only the server differs"
else
  loadgen_before=$BENCH_DIR/target-$before_sha/release/examples/loadgen
  loadgen_after=$BENCH_DIR/target-$after_sha/release/examples/loadgen
  loadgen_note="each revision's own load generator: webhook/examples/loadgen.rs or the request signing differ between $before_sha and $after_sha"
fi
say "$loadgen_note"

people=""
for ((u = 0; u < USERS; u++)); do
  people+="load$u=slack:TLOAD:ULOAD$u;"
done

export SLACK_SIGNING_SECRET=bench-secret SLACK_BOT_TOKEN=xoxb-bench SLACK_BOT_USER_ID=UBOTLOAD SLACK_TEAM_ID=TLOAD
export SLACK_API_BASE_URL=http://127.0.0.1:$SLACK_PORT/api
export WELLBEING_PEOPLE=$people
unset SLACK_USER_ID RUST_LOG

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$PORT" "$SLACK_PORT"; do
  if port_busy "$p"; then
    echo "something already listens on 127.0.0.1:$p; stop it or set PORT / SLACK_PORT" >&2
    exit 1
  fi
done

server_pid=""
stop_server() {
  [[ -n $server_pid ]] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 1 300); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$server_pid" 2>/dev/null; then
    say "server $server_pid did not stop within 30 s of SIGTERM; killing it"
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT
trap 'exit 130' INT TERM

stamp=$(date -u +%Y%m%dT%H%M%SZ)
runs_dir=$BENCH_DIR/runs-$stamp
mkdir -p "$runs_dir"
rows=$runs_dir/rows.tsv
: >"$rows"

# One run: start the server on a fresh data dir, wait for /healthz, load it, stop it.
run() {
  local label=$1 sha=$2 server=$3 loadgen=$4 mode=$5 round=$6
  local name=$label-$mode-$round data=$BENCH_DIR/data
  rm -rf "$data"
  mkdir -p "$data"
  local worker=true extra=()
  if [[ $mode == off ]]; then
    worker=false
  else
    extra=(--fake-slack "127.0.0.1:$SLACK_PORT")
  fi
  "$server" webhook --listen "127.0.0.1:$PORT" --data-dir "$data" --worker "$worker" \
    >"$runs_dir/$name.server.log" 2>&1 &
  server_pid=$!
  local ready=""
  for _ in $(seq 1 300); do
    if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
    if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$PORT/healthz" 2>/dev/null; then
      ready=1
      break
    fi
    sleep 0.1
  done
  if [[ -z $ready ]]; then
    echo "$name: the server did not answer /healthz within 30 s; its log:" >&2
    cat "$runs_dir/$name.server.log" >&2
    exit 1
  fi
  say "$name: $sha, worker $mode, round $round"
  local status=0
  "$loadgen" --url "http://127.0.0.1:$PORT" --connections "$CONNECTIONS" --seconds "$BENCH_SECONDS" \
    --users "$USERS" --data-dir "$data" "${extra[@]}" >"$runs_dir/$name.loadgen.log" 2>&1 || status=$?
  local load
  load=$(cut -d' ' -f1 /proc/loadavg)
  stop_server
  cat "$runs_dir/$name.loadgen.log" >&2
  local ack p50 p99 max check replies refused
  ack=$(sed -n 's/^acknowledged: [0-9]* events (\([0-9]*\) events\/s).*/\1/p' "$runs_dir/$name.loadgen.log")
  p50=$(sed -n 's/^ack latency: p50 \([0-9.]*\) ms.*/\1/p' "$runs_dir/$name.loadgen.log")
  p99=$(sed -n 's/^ack latency:.* p99 \([0-9.]*\) ms,.*/\1/p' "$runs_dir/$name.loadgen.log")
  max=$(sed -n 's/^ack latency:.* max \([0-9.]*\) ms.*/\1/p' "$runs_dir/$name.loadgen.log")
  if [[ $status == 0 ]] && grep -q '^inbox check: ok' "$runs_dir/$name.loadgen.log"; then
    check="one row per ack"
  else
    check="FAILED (loadgen exit $status)"
  fi
  replies=$(sed -n 's/^fake Slack: \([0-9]*\) replies.*/\1/p' "$runs_dir/$name.loadgen.log")
  refused=$(grep -c 'does not serve' "$runs_dir/$name.server.log" || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$sha" "$mode" "$round" "${ack:-0}" \
    "${p50:-?}" "${p99:-?}" "${max:-?}" "$check" "$load" "${replies:--}/$refused" >>"$rows"
}

for ((round = 1; round <= ROUNDS; round++)); do
  for mode in off on; do
    run before "$before_sha" "$server_before" "$loadgen_before" "$mode" "$round"
    run after "$after_sha" "$server_after" "$loadgen_after" "$mode" "$round"
  done
done

served=$(grep -ho 'serving the configured people.*' "$runs_dir"/after-*.server.log | head -1 || true)

report() {
  echo "Before: \`$BEFORE\` = $before_sha; after: \`$AFTER\` = $after_sha. $ROUNDS rounds, $CONNECTIONS connections, $BENCH_SECONDS s per run, $USERS users; alternating before, after for each mode."
  echo "Load generator: $loadgen_note."
  echo "Who is served: WELLBEING_PEOPLE names the $USERS load users for every server (after's log: ${served:-no 'serving the configured people' line})."
  echo
  echo "| Revision | Worker | Round | Acknowledged | p50 | p99 | max | Inbox check | Load average (1 min) | Replies / refusals |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  awk -F'\t' '
    function group(n,   s) { s = ""; while (n >= 1000) { s = sprintf(",%03d", n % 1000) s; n = int(n / 1000) } return n s }
    { printf "| %s `%s` | %s | %d | %s events/s | %s ms | %s ms | %s ms | %s | %s | %s |\n", $1, substr($2, 1, 7), $3, $4, group($5), $6, $7, $8, $9, $10, ($3 == "on" ? $11 : "-") }
  ' "$rows"
  echo
  echo "Medians per revision and mode:"
  echo
  echo "| Revision | Worker | Acknowledged | p50 | p99 | max | Load average |"
  echo "|---|---|---|---|---|---|---|"
  local label mode
  for mode in off on; do
    for label in before after; do
      awk -F'\t' -v l="$label" -v m="$mode" '
        function group(n,   s) { n = int(n + 0.5); s = ""; while (n >= 1000) { s = sprintf(",%03d", n % 1000) s; n = int(n / 1000) } return n s }
        function median(a, n,   i, j, t) {
          for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
          return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        }
        $1 == l && $3 == m { n++; ack[n] = $5; p50[n] = $6; p99[n] = $7; mx[n] = $8; ld[n] = $10; sha = $2 }
        END {
          if (n) printf "| %s `%s` | %s | %s events/s | %.2f ms | %.2f ms | %.2f ms | %.2f |\n", l, substr(sha, 1, 7), m, group(median(ack, n)), median(p50, n), median(p99, n), median(mx, n), median(ld, n)
        }
      ' "$rows"
    done
  done
  echo
  awk -F'\t' '
    function median(a, n,   i, j, t) {
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    { k = $1 SUBSEP $3; c[k]++; v[k, c[k]] = $5 }
    END {
      split("off on", modes, " ")
      for (i = 1; i <= 2; i++) {
        m = modes[i]; nb = c["before", m]; na = c["after", m]
        if (!nb || !na) continue
        for (j = 1; j <= nb; j++) b[j] = v["before", m, j]
        for (j = 1; j <= na; j++) a[j] = v["after", m, j]
        mb = median(b, nb); ma = median(a, na)
        printf "Worker %s: after/before median acknowledged = %.3f (%+.1f%%).\n", m, ma / mb, (ma / mb - 1) * 100
      }
    }
  ' "$rows"
  echo
  echo "Logs: $runs_dir"
}

report | tee "$BENCH_DIR/results-$stamp.md"
