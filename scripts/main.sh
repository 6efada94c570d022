#!/bin/sh
# The main job: install what is needed, fetch MNIST, build, train the 784-500-10 EP network
# (preset ep-1h, Scellier & Bengio 2017) and print its test error.
# Extra arguments go to `eqprop train` (e.g. --epochs 1).
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh data
sh scripts/fetch_data.sh mnist
make -j2 all
mkdir -p runs
exec ./build/eqprop train --preset ep-1h --data mnist --save runs/ep-1h.model \
    --log runs/ep-1h.jsonl "$@"
