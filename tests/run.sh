#!/bin/sh
# Runs every test program given as an argument, adds up their checks, and ends with the one
# line "N passed, N failed". A program that crashes or exits non-zero without reporting
# counts as one failed check.
passed=0
failed=0
for t in "$@"; do
    name=$(basename "$t")
    out=$("$t" 2>&1)
    rc=$?
    line=$(printf '%s\n' "$out" | grep '^checks: ' | tail -n 1)
    p=$(printf '%s' "$line" | sed -n 's/^checks: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
    f=$(printf '%s' "$line" | sed -n 's/^checks: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    if [ -z "$p" ]; then p=0; f=1; fi
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    if [ "$f" -ne 0 ]; then
        printf '%s\n' "$out" | grep -v '^ok ' | tail -n 40
        echo "FAILED $name (exit $rc)"
    else
        echo "ok $name ($p checks)"
    fi
    passed=$((passed + p))
    failed=$((failed + f))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
