#!/bin/sh
# The whole test suite: install build dependencies, build with warnings as errors, run every
# test, run the suite again under AddressSanitizer + UndefinedBehaviorSanitizer, then run the
# command itself (train, eval, gradcheck on tiny jobs) under valgrind memcheck, then the
# bad-input corpus (scripts/reliability.sh, ~15 s), then the data-parallel tests under
# mpirun -np 2 (make mpi-test: the MPI build in build-mpi/, ~1 min).
# Ends with one line "N passed, N failed". No network is needed beyond apt for packages.
set -u
cd "$(dirname "$0")/.."
sh scripts/deps.sh test || exit 1
make -j2 WERROR=1 all >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
out=$(mktemp)
make -s WERROR=1 test 2>&1 | tee "$out"
plain=$(tail -n 1 "$out")
make -s -j2 WERROR=1 asan 2>&1 | sed 's/^/asan: /' | tee "$out"
asan=$(tail -n 1 "$out")
sh scripts/valgrind.sh 2>&1 | sed 's/^/valgrind: /' | tee "$out"
vg=$(tail -n 1 "$out")
sh scripts/reliability.sh 2>&1 | sed 's/^/reliability: /' | tee "$out"
rel=$(tail -n 1 "$out")
if command -v mpicc >/dev/null 2>&1 && command -v mpirun >/dev/null 2>&1; then
    make -s WERROR=1 mpi-test 2>&1 | sed 's/^/mpi: /' | tee "$out"
    mpi=$(tail -n 1 "$out")
else
    echo "mpi: skipped (no mpicc/mpirun; scripts/deps.sh test installs Open MPI)"
    mpi="mpi: 0 passed, 0 failed"
fi
rm -f "$out"
total_p=0
total_f=0
for line in "$plain" "$asan" "$vg" "$rel" "$mpi"; do
    p=$(echo "$line" | sed -n 's/^\([a-z]*: \)\{0,1\}\([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
    f=$(echo "$line" | sed -n 's/^\([a-z]*: \)\{0,1\}\([0-9]*\) passed, \([0-9]*\) failed$/\3/p')
    [ -n "$p" ] || { p=0; f=1; }
    total_p=$((total_p + p))
    total_f=$((total_f + f))
done
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
