#!/bin/sh
# make mpi-bench: data-parallel throughput of the MPI build (build-mpi/) on this machine,
# P = 1 and P = 2 processes of one thread each (loopback, --oversubscribe), for the ep-1h and
# snn-mlp presets and for ep-1h at batch 200. Each figure is the best of REPEATS runs; the
# limit it is stated against is P times the one-process rate measured in the same run.
# Also: the share of step time spent in the group's sums (comm_seconds, which includes
# waiting for the slower process) and the bytes exchanged per mini-batch.
# Data: full MNIST if fetched (data/ or $EQPROP_DATA), else the committed sample.
set -u
B=${1:-build-mpi}
REPEATS=${REPEATS:-3}
export OPENBLAS_NUM_THREADS=1
# copy-in/copy-out through shared memory measured faster here than single-copy (CMA)
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
MPIRUN="mpirun --allow-run-as-root --oversubscribe"
if "$B/eqprop" eval --help >/dev/null 2>&1 && [ -f "${EQPROP_DATA:-data}/mnist/train-labels-idx1-ubyte" ]; then
    DATA=mnist
    LIMIT=60000
    EPOCHS=1
else
    DATA=tests/data/mnist-sample
    LIMIT=1000
    EPOCHS=10
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "mpi-bench: $(nproc) cores, $(mpirun --version 2>/dev/null | head -n 1), data $DATA ($LIMIT examples x $EPOCHS epochs), best of $REPEATS"

# rate NP ARGS...: prints "samples/s comm_share" (best run), mean over the epochs of the best
rate() {
    np=$1
    shift
    best=0
    share=0
    for r in $(seq "$REPEATS"); do
        rm -f "$tmp/log"
        $MPIRUN -np "$np" "$B/eqprop" train "$@" --data "$DATA" --train-limit "$LIMIT" \
            --test-limit 100 --epochs "$EPOCHS" --threads 1 --log "$tmp/log" --quiet \
            >"$tmp/out" 2>&1 || { cat "$tmp/out" >&2; echo "0 0"; return; }
        line=$(awk '{
            s = $0; sub(/.*"epoch_seconds": /, "", s); sub(/,.*/, "", s); t += s
            c = 0; if ($0 ~ /comm_seconds/) { c = $0; sub(/.*"comm_seconds": /, "", c); sub(/[,}].*/, "", c) }
            ct += c; n++
        } END { printf "%.1f %.4f", n * '"$LIMIT"' / t, ct / t }' "$tmp/log")
        rr=${line% *}
        if awk -v a="$rr" -v b="$best" 'BEGIN { exit !(a > b) }'; then
            best=$rr
            share=${line#* }
        fi
    done
    echo "$best $share"
}

bench() { # NAME BYTES_PER_BATCH ARGS...
    name=$1
    bytes=$2
    shift 2
    one=$(rate 1 "$@")
    two=$(rate 2 "$@")
    r1=${one% *}
    r2=${two% *}
    sh2=${two#* }
    awk -v n="$name" -v a="$r1" -v b="$r2" -v s="$sh2" -v by="$bytes" 'BEGIN {
        printf "%-28s P=1 %8.0f samples/s   P=2 %8.0f samples/s   speedup %.2fx of limit 2.00x (%.0f%%)   in sums %4.1f%% of P=2 step time   %s per batch\n",
            n, a, b, (a > 0 ? b / a : 0), (a > 0 ? 50 * b / a : 0), 100 * s, by }'
}

# bytes per batch: ep-1h (states, batch 20): the free and nudged states of 20 rows x 510 units
# (+ 16 counters) as floats; split (the preset's auto choice) adds the clamp context (20 x 500)
# and the change of W_2, b_2 (5010 + 1); batch 200 (grads): 397510 parameters; snn-mlp:
# reduce-scatter + allgather of 795010 parameters
bench "ep-1h (batch 20, split)" "$(( (2 * 20 * 510 + 16 + 20 * 500 + 5011) * 4 / 1024 )) KiB" --preset ep-1h
bench "ep-1h (batch 20, states)" "$(( (2 * 20 * 510 + 16) * 4 / 1024 )) KiB" --preset ep-1h --dist-sync states
bench "ep-1h --batch 200 (grads)" "$(( 397510 * 4 / 1024 )) KiB" --preset ep-1h --batch 200
bench "snn-mlp (batch 128)" "$(( 795010 * 4 / 1024 )) KiB" --preset snn-mlp
