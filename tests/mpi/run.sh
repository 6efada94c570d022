#!/bin/sh
# The data-parallel tests (make mpi-test): tests/mpi/test_mpi under mpirun -np 2, then a sweep
# of 4 configurations over 2 ranks through the command. Ends with "N passed, N failed".
# Usage: tests/mpi/run.sh BUILD_DIR (an MPI=1 build)
set -u
B=${1:-build-mpi}
MPIRUN="mpirun --allow-run-as-root --oversubscribe -np 2"
export OMPI_MCA_btl_vader_single_copy_mechanism=none # containers without ptrace rights
export OPENBLAS_NUM_THREADS=1
passed=0
failed=0
out=$($MPIRUN "$B/tests/mpi/test_mpi" tests/data/mnist-sample 2>&1)
rc=$?
line=$(printf '%s\n' "$out" | grep '^checks: ' | tail -n 1)
p=$(printf '%s' "$line" | sed -n 's/^checks: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p')
f=$(printf '%s' "$line" | sed -n 's/^checks: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p')
if [ -z "$p" ]; then p=0; f=1; fi
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
printf '%s\n' "$out" | grep -E "P=|resume:|FAIL|processes|mpi:|data:|snn:|ep:|bp:" | sed 's/^/  /'
if [ "$f" -ne 0 ]; then
    printf '%s\n' "$out" | tail -n 30
    echo "FAILED test_mpi (exit $rc)"
else
    echo "ok test_mpi ($p checks)"
fi
passed=$((passed + p))
failed=$((failed + f))

# the sweep: 2 x 2 grid over 2 ranks, one table
tmp=$(mktemp -d)
$MPIRUN "$B/eqprop" sweep --grid seed=1,2 --grid beta=0.5,1 --out "$tmp/table.tsv" -- \
    --preset ep-1h --sizes 784-32-10 --data tests/data/mnist-sample --train-limit 100 \
    --test-limit 50 --epochs 1 --threads 1 --log "$tmp/run-{run}.jsonl" >"$tmp/out" 2>&1
rc=$?
check() { # name condition...
    n=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL sweep: $n"; fi
}
check "exit 0 (got $rc)" test "$rc" -eq 0
check "table has a header and 4 rows" test "$(wc -l <"$tmp/table.tsv" 2>/dev/null)" -eq 5
check "header names the grids" grep -q "^run	seed	beta	epochs	train_error	test_error" "$tmp/table.tsv"
check "every run exited 0" test "$(awk -F'\t' 'NR>1 && $NF==0' "$tmp/table.tsv" | wc -l)" -eq 4
check "test errors are numbers in [0,1]" test "$(awk -F'\t' 'NR>1 && $6>=0 && $6<=1 && $6 ~ /^[0-9.]+$/' "$tmp/table.tsv" | wc -l)" -eq 4
check "each run wrote its own log" test "$(ls "$tmp"/run-*.jsonl 2>/dev/null | wc -l)" -eq 4
check "runs with different seeds differ" test "$(awk -F'\t' 'NR>1{print $5}' "$tmp/table.tsv" | sort -u | wc -l)" -gt 1
$MPIRUN "$B/eqprop" sweep --grid seed=1,2 -- --preset ep-1h --save same.model >"$tmp/bad" 2>&1
check "a shared --save is refused" grep -q "put {run} in the name" "$tmp/bad"
sed 's/^/  /' "$tmp/table.tsv"
rm -rf "$tmp"
echo "ok sweep"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
