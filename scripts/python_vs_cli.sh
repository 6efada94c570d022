#!/bin/sh
# Issue 11: `import eqprop` trains ep-1h for one epoch on full MNIST and must get the CLI's test
# error with the same seed. Usage: sh scripts/python_vs_cli.sh [DATA_DIR] (default data/mnist;
# needs a built tree: make, and /usr/bin/python3 with numpy).
set -eu
data=${1:-data/mnist}
out=$(OPENBLAS_NUM_THREADS=1 ./build/eqprop train --preset ep-1h --epochs 1 --threads 1 --seed 1 \
      --data "$data")
echo "$out"
cli=$(echo "$out" | sed -n 's/^test error: *\([0-9.]*\)%.*/\1/p')
[ -n "$cli" ] || { echo "python_vs_cli: no 'test error:' line from the CLI" >&2; exit 1; }
cli=$(awk -v e="$cli" 'BEGIN { printf "%.6f", e / 100 }')
EQPROP_LIB=build/libeqprop.so PYTHONPATH=python OPENBLAS_NUM_THREADS=1 \
    /usr/bin/python3 tests/python_ep.py "$data" "$cli" 0 0
