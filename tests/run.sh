#!/usr/bin/env bash
# Runs every test binary in $BUILD/tests (from the repository root, so that
# ../shared/data resolves), then prints one closing line for the whole suite:
#   "tests: N passed, N failed, N skipped"
set -u
BUILD=${BUILD:-build}
cd "$(dirname "$0")/.."
pass=0 fail=0 skip=0 broken=""
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  case "$t" in *.o|*.d) continue;; esac
  out=$("$t" 2> >(sed 's/^/    /' >&2)); rc=$?
  echo "$out"
  line=$(printf '%s\n' "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  if [ -z "$line" ]; then
    echo "$t: exited $rc without a summary line" >&2; fail=$((fail+1)); broken="$broken $t"; continue
  fi
  p=$(sed -E 's/.* ([0-9]+) passed.*/\1/' <<<"$line")
  f=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line")
  s=$(sed -nE 's/.* ([0-9]+) skipped.*/\1/p' <<<"$line")
  pass=$((pass+p)) fail=$((fail+f)) skip=$((skip+${s:-0}))
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then fail=$((fail+1)); broken="$broken $t"; fi
done
[ -n "$broken" ] && echo "broken:$broken" >&2
echo "tests: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
