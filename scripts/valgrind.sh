#!/bin/sh
# valgrind memcheck of the eqprop command on tiny jobs (committed sample data): no invalid
# access, no uninitialised read, no leak. One check per command; ends "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
bin=build/eqprop
tmp=$(mktemp -d)
passed=0
failed=0
# vg NAME EXPECTED_EXIT ARGS...: valgrind's own failures exit 99
vg() {
    name=$1
    want=$2
    shift 2
    valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible \
        --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
        "$bin" "$@" > "$tmp/out" 2>&1
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        passed=$((passed + 1))
        echo "ok $name"
    else
        failed=$((failed + 1))
        tail -n 30 "$tmp/out"
        echo "FAILED $name (exit $rc, expected $want)"
    fi
}
data=tests/data/mnist-sample
vg train 0 train --data $data --train-limit 100 --test-limit 50 --sizes 784-20-10 --epochs 1 \
    --save "$tmp/m.eqp" --checkpoint "$tmp/c.ckpt" --log "$tmp/log.jsonl"
vg resume 0 train --data $data --train-limit 100 --test-limit 50 --resume "$tmp/c.ckpt" \
    --epochs 2
vg eval 0 eval --model "$tmp/m.eqp" --data $data --limit 50
vg gradcheck 0 gradcheck --sizes 10-6-3 --seeds 3 --max-steps 2000 --json "$tmp/g.json"
vg snn-train 0 train --preset snn-mlp --data $data --train-limit 100 --test-limit 50 \
    --sizes 784-16r-10 --steps 5 --batch 25 --epochs 1 --save "$tmp/s.model" \
    --checkpoint "$tmp/s.ckpt" --log "$tmp/s.jsonl"
vg snn-resume 0 train --resume "$tmp/s.ckpt" --data $data --train-limit 100 --test-limit 50 \
    --epochs 2
vg snn-eval 0 eval --model "$tmp/s.model" --data $data --limit 50
vg bp-train 0 train --learner bp --data $data --train-limit 100 --test-limit 50 \
    --sizes 784-16-10 --batch 25 --epochs 1 --save "$tmp/b.model" --checkpoint "$tmp/b.ckpt" \
    --log "$tmp/b.jsonl"
vg bp-resume 0 train --resume "$tmp/b.ckpt" --data $data --train-limit 100 --test-limit 50 \
    --epochs 2
vg bp-cnn 0 train --preset bp-cnn --data $data --train-limit 50 --test-limit 20 --conv1 2 \
    --conv2 3 --fc 8 --batch 25 --epochs 1
vg bp-eval 0 eval --model "$tmp/b.model" --data $data --limit 50
vg pc-train 0 train --preset pc-mlp-mnist --data $data --train-limit 100 --test-limit 50 \
    --sizes 784-16-16-10 --lr 1e-3,1e-3,1e-3 --epochs 1 --checkpoint "$tmp/p.ckpt"
vg pc-resume 0 train --resume "$tmp/p.ckpt" --data $data --train-limit 100 --test-limit 50 \
    --epochs 2
vg hopfield 0 hopfield --n 100 --cues 5 --loads 0.05,0.2
vg hopfield-modern 0 train --preset hopfield-modern --n 100 --cues 5 --loads 0.5
vg eprop-online 0 train --preset eprop-online --stream-steps 300 --drift-at 150 --window 100 \
    --sizes 40-12r-2 --log "$tmp/o.jsonl"
vg eprop-evidence 0 train --preset eprop-evidence --data evidence --train-limit 16 \
    --test-limit 8 --sizes 40-8r-2 --batch 8 --epochs 1 --update-every 100
vg eprop-gradcheck 0 gradcheck --learner eprop --sizes 28-8r-10 --seeds 2
vg bad-file 1 eval --model "$data/t10k-labels-idx1-ubyte.gz" --data $data
rm -rf "$tmp"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
