#!/usr/bin/env bash
# The project's whole check, as README.md gives it: `npm test`.
# Contract first (generated code fresh, lint, no breaking change), then types, then tap. Ends with
# the plain "N passed, N failed" line that CI reads, computed from tap's counts; exits with tap's
# status (or the first failing check's).
set -uo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
fail() { printf '\n%s\n0 passed, 1 failed\n' "$*"; exit 1; }

scratch=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$scratch"' EXIT
# The type checkers take longest (tsc ~20 s of CPU, deno check ~7 s cold) and use one core each:
# they run beside the buf steps, and their output is shown in order once they finish. So does the
# build of the bundles the tests start their peers and servers from (test/fixtures/node-bundles.ts);
# if it fails, the first test that needs them builds again and reports why.
node_modules/.bin/tsc --noEmit >"$scratch/tsc.log" 2>&1 &
tsc_pid=$!
node_modules/deno/deno check --quiet client-deno/main.ts >"$scratch/deno.log" 2>&1 &
deno_pid=$!
node --import tsx --input-type=module -e 'import { nodePrograms } from "./test/fixtures/node-bundles.ts"; await nodePrograms();' >/dev/null 2>&1 &
bundles_pid=$!

step "generated code matches proto/ (buf generate into a scratch folder, compared with gen/)"
npx --no buf generate -o "$scratch" || fail "buf generate failed"
diff -r "$scratch/gen" gen || fail "gen/ does not match proto/: run 'npm run gen' and commit the result"

step "buf lint"
npx --no buf lint || fail "buf lint found problems in proto/"

step "buf breaking (against the contract on the previous commit of main)"
bash scripts/check-breaking.sh || fail "the contract changed incompatibly (see buf's explanation above)"

step "type checks: tsc --noEmit, deno check"
wait "$tsc_pid"; tsc_status=$?
cat "$scratch/tsc.log"
[ "$tsc_status" -eq 0 ] || fail "tsc found type errors"
wait "$deno_pid"; deno_status=$?
cat "$scratch/deno.log"
[ "$deno_status" -eq 0 ] || fail "deno check found type errors"

step "tap"
wait "$bundles_pid"
log=$(mktemp)
npx --no -- tap "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# tap closes with "# { total: N, pass: P, fail: F, skip: S }"; CI reads "N passed, N failed".
counts=$(grep -E '^# \{ total: ' "$log" | tail -n 1)
rm -f "$log"
count() { sed -nE "s/.*[{ ]$1: ([0-9]+).*/\1/p" <<<"$counts"; }
passed=$(count pass); failed=$(count fail); skipped=$(count skip)
if [ -z "$counts" ]; then
  echo "0 passed, 1 failed"
  [ "$status" -ne 0 ] || status=1
else
  [ "$status" -eq 0 ] || [ "${failed:-0}" -gt 0 ] || failed=1
  echo "${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped"
fi
exit "$status"
