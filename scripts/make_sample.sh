#!/bin/sh
# Make the small MNIST sample that the tests use (tests never touch the network):
# the first 2000 training and the first 500 test examples of real MNIST, as valid IDX files
# under the usual four names, compressed with `gzip -9 -n` so the output is reproducible.
#   scripts/make_sample.sh [SRC_DIR [OUT_DIR]]
# SRC_DIR holds the four uncompressed MNIST files [${EQPROP_DATA:-./data}/mnist];
# OUT_DIR defaults to tests/data/mnist-sample.
set -eu

src=${1:-${EQPROP_DATA:-./data}/mnist}
out=${2:-tests/data/mnist-sample}
mkdir -p "$out"

# The four bytes of $1 in big-endian order, as printf escapes.
be32() {
    printf '\\%03o\\%03o\\%03o\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) \
        $(($1 >> 8 & 255)) $(($1 & 255))
}

# sample NAME COUNT HEADER_BYTES RECORD_BYTES MAGIC [ROWS COLS]
sample() {
    name=$1 count=$2 hlen=$3 rec=$4 magic=$5
    in=$src/$name
    [ -f "$in" ] || { echo "make_sample.sh: $in: not found (run scripts/fetch_data.sh mnist)" >&2; exit 1; }
    header="$(be32 "$magic")$(be32 "$count")"
    [ $# -ge 7 ] && header="$header$(be32 "$6")$(be32 "$7")"
    {
        # shellcheck disable=SC2059 # the header is built as printf escapes on purpose
        printf "$header"
        tail -c +$((hlen + 1)) "$in" | head -c $((count * rec))
    } | gzip -9 -n > "$out/$name.gz.tmp"
    mv "$out/$name.gz.tmp" "$out/$name.gz"
    echo "$out/$name.gz: $count examples"
}

sample train-images-idx3-ubyte 2000 16 784 2051 28 28
sample train-labels-idx1-ubyte 2000 8 1 2049
sample t10k-images-idx3-ubyte 500 16 784 2051 28 28
sample t10k-labels-idx1-ubyte 500 8 1 2049
