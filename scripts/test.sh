#!/bin/sh
# The whole test suite: install build dependencies, build with warnings as errors, run every
# test, then run the suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
# Ends with one line "N passed, N failed". No network is needed beyond apt for packages.
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh build || exit 1
make -j2 WERROR=1 all >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
out=$(mktemp)
make -s WERROR=1 test 2>&1 | tee "$out"
plain=$(tail -n 1 "$out")
make -s -j2 WERROR=1 asan 2>&1 | sed 's/^/asan: /' | tee "$out"
asan=$(tail -n 1 "$out")
rm -f "$out"
p1=$(echo "$plain" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f1=$(echo "$plain" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
p2=$(echo "$asan" | sed -n 's/^asan: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f2=$(echo "$asan" | sed -n 's/^asan: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
[ -n "$p1" ] || { p1=0; f1=1; }
[ -n "$p2" ] || { p2=0; f2=1; }
echo "$((p1 + p2)) passed, $((f1 + f2)) failed"
[ $((f1 + f2)) -eq 0 ]
