#!/usr/bin/env bash
# The whole suite, N times in a row (default 20), while two busy loops keep both cores loaded:
# the check that no test depends on timing. Stops at the first failing run.
#   scripts/stress-tests.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
# The build `make test` runs.
flags=$(make -s --no-print-directory print-test-build-flags)
swift build --build-tests $flags >/dev/null
bin=$(swift build $flags --show-bin-path)/calltracePackageTests.xctest
# Temporary stores where `make test` puts them (tmpfs when there is one).
export TMPDIR=$(make -s --no-print-directory print-test-tmpdir)
yes >/dev/null & load1=$!
yes >/dev/null & load2=$!
trap 'kill $load1 $load2 2>/dev/null || true' EXIT
for run in $(seq 1 "$runs"); do
  started=$(date +%s)
  if ! "$bin" --testing-library swift-testing >"/tmp/calltrace-stress-$run.log" 2>&1; then
    echo "run $run of $runs FAILED after $(( $(date +%s) - started )) s; see /tmp/calltrace-stress-$run.log"
    grep -E "✘" "/tmp/calltrace-stress-$run.log" | head -20
    exit 1
  fi
  echo "run $run of $runs passed in $(( $(date +%s) - started )) s ($(grep -Eo 'Test run with [0-9]+ tests' "/tmp/calltrace-stress-$run.log"))"
done
echo "$runs consecutive runs passed under load"
