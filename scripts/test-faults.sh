#!/usr/bin/env bash
# `make test-faults`: the fault scenarios K times back to back (FAULT_RUNS, default 5), each
# in a pytest session of its own, while a process busy-loops on one core for the whole run,
# so the faults land on a machine short of CPU as production nodes often are. Prints
# "passed N of K" and exits non-zero unless every run passed.
set -uo pipefail
cd "$(dirname "$0")/.."

runs="${FAULT_RUNS:-5}"
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
  echo "FAULT_RUNS must be a positive whole number, not '$runs'" >&2
  exit 2
fi
py=".venv/bin/python"
# The heavier load (`make test` runs 1,500 claims through the same faults).
export CLAIMFLOW_FAULT_CLAIMS="${CLAIMFLOW_FAULT_CLAIMS:-5000}"

"$py" -c 'while True: pass' &
hog=$!
# The hog is ours: stopped by its PID however this script ends.
trap 'kill "$hog" 2>/dev/null; wait "$hog" 2>/dev/null' EXIT
echo "CPU hog running as pid $hog"

passed=0
for run in $(seq 1 "$runs"); do
  began=$SECONDS
  # Each run's logs (and thread dumps, when one does not settle) stay in a folder of its own:
  # pytest's default temporary folders are pruned by later sessions.
  logs=".state/test-faults/run-$run"
  mkdir -p "$(dirname "$logs")"
  if "$py" -m pytest tests/faults -p no:cacheprovider -q -s --basetemp="$logs" ${PYTEST_ARGS:-}; then
    passed=$((passed + 1))
    result=passed
  else
    result=FAILED
  fi
  echo "fault run $run of $runs: $result in $((SECONDS - began))s (logs in $logs)"
done

echo "passed $passed of $runs"
[ "$passed" -eq "$runs" ]
