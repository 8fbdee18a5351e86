#!/usr/bin/env bash
# The whole suite, arranged for a 2-core machine. One test dominates the wall clock:
# the 10k-message chaos run against moto (10-15 minutes, most of it moto's Python on
# one core). Run one after the other, the suite took 48 minutes; here that run starts
# as soon as everything is built and the rest of the suite, the slim demo build check
# and the SAM checks use the other core beside it. Its output is printed at the end,
# and any failure, of it or of anything else, fails the suite.
set -uo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
CHAOS=chaos_faults_lose_and_double_count_nothing
BURST=a_burst_of_1000_messages_for_one_customer_lands_exactly_once_each
CRASH=crashes_and_faults_at_100k_lose_and_double_count_nothing
DISPATCH=follow_up_dispatch_under_crashes_and_faults_never_sends_twice
LOG=target/chaos-test.log

step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "build every test target"
$CARGO test --workspace --locked --no-run || exit 1

step "start the moto chaos run in the background (log: $LOG)"
mkdir -p target
# The test binary itself, not `cargo test`: cargo holds the build directory's lock while
# its tests run, which would make the rest of the suite wait for this one.
# Asked of the whole workspace, as built above (one package alone would unify other
# features and rebuild half the tree).
# Built once above; ask cargo where (JSON on stdout, no rebuild).
test_bin() {
  $CARGO test --workspace --locked --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}
CHAOS_BIN=$(test_bin ingest_moto)
CRASH_BIN=$(test_bin crash_chaos)
[[ -x "$CRASH_BIN" ]] || { echo "could not find the crash_chaos test binary"; exit 1; }
[[ -x "$CHAOS_BIN" ]] || { echo "could not find the ingest_moto test binary"; exit 1; }
# cargo runs a test binary in its package's folder; so does this.
(cd tests && exec "$CHAOS_BIN" --exact "$CHAOS" "$BURST" --nocapture) >"$LOG" 2>&1 &
chaos_pid=$!
# Stop it if this script is interrupted: nothing is left running on the machine.
trap 'kill "$chaos_pid" 2>/dev/null' EXIT

failed=()
step "the rest of the suite"
$CARGO test --workspace --locked --no-fail-fast -- --skip "$CHAOS" --skip "$BURST" --skip "$CRASH" --skip "$DISPATCH" || failed+=("cargo test")
# Its own step so that its figures (faults, abandoned invocations, redeliveries) print.
step "the in-memory crash-point chaos run"
# The binary built above: `cargo test --test crash_chaos` would resolve dev-dependency
# features for one package only and rebuild a third of the tree (4-5 minutes).
(cd tests && exec "$CRASH_BIN" --nocapture) >target/crash-chaos.log 2>&1 || failed+=("crash chaos")
grep -E '^(crash chaos:|dispatch chaos:|test result)' target/crash-chaos.log || tail -n 40 target/crash-chaos.log
step "the slim build make demo uses"
$CARGO check --locked -p feedloop-cli --no-default-features || failed+=("slim build")
step "SAM checks, then sam local (invoke, start-api, start-lambda) on that build"
make --no-print-directory sam-local-check || failed+=("sam-local-check")

step "waiting for the moto chaos run"
wait "$chaos_pid" || failed+=("chaos run")
trap - EXIT
grep -E '^(chaos:|burst:|test |test result)' "$LOG" || tail -n 40 "$LOG"

if ((${#failed[@]})); then
  printf '\nFAILED: %s\n' "${failed[*]}"
  [[ " ${failed[*]} " == *" chaos run "* ]] && tail -n 60 "$LOG"
  exit 1
fi
step "all green"
