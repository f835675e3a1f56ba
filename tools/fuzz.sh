#!/usr/bin/env bash
# Long fuzzing, outside CI.
#
#   tools/fuzz.sh [MINUTES]      (default 10)
#
# 1. tests/test_fuzz.py with the "long" Hypothesis profile: 50 times the CI
#    examples per test, new ones every run; failing examples are kept in
#    .hypothesis/ and replayed first next time.
# 2. tools/bad_calls.py (torch adapter included) with a new seed per round
#    of 2000 calls, until MINUTES have passed since the start.
#
# PYTHON selects the interpreter (e.g. the instrumented one tools/sanitize.sh
# prepares).  Exits non-zero at the first failure, with its report.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-10}
python=${PYTHON:-python}
end=$(( $(date +%s) + 60 * minutes ))

echo "== fuzz: tests/test_fuzz.py, long profile"
RNNCORE_FUZZ_PROFILE=long $python -m pytest -q -p no:cacheprovider tests/test_fuzz.py \
  --hypothesis-show-statistics

seed=$(( $(date +%s) % 100000 * 1000 ))
rounds=0
while [ "$(date +%s)" -lt "$end" ]; do
  if ! out=$($python tools/bad_calls.py --calls 2000 --seed "$seed" --torch 2>&1); then
    echo "$out"
    echo "== fuzz: bad calls FAILED (seed $seed)"
    exit 1
  fi
  rounds=$((rounds + 1))
  seed=$((seed + 1))
done
echo "== fuzz: $rounds rounds of 2000 bad calls clean (last seed $((seed - 1)))"
