#!/bin/sh
# make install: headers, libraries, the command, eqprop.pc, a man page generated from the
# --help texts, the Python package. Usage: scripts/install.sh BUILD PREFIX
set -eu
B=$1; P=$2
PY=$P/lib/python3/dist-packages
mkdir -p "$P/include/eqprop" "$P/lib/pkgconfig" "$P/bin" "$P/share/man/man1" "$PY/eqprop"
install -m 644 include/eqprop/*.h "$P/include/eqprop/"
install -m 644 "$B/libeqprop.a" "$P/lib/"
install -m 755 "$B/libeqprop.so" "$P/lib/"
install -m 755 "$B/eqprop" "$P/bin/"
install -m 644 python/eqprop/__init__.py "$PY/eqprop/"
libs=$(pkg-config --libs hdf5 2>/dev/null || echo -lhdf5_serial)
cat > "$P/lib/pkgconfig/eqprop.pc" <<PC
prefix=$P
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: eqprop
Description: Equilibrium Propagation and spiking networks (C library)
Version: 0.1
Cflags: -I\${includedir}
Libs: -L\${libdir} -Wl,-rpath,\${libdir} -leqprop
Libs.private: $libs -lopenblas -lz -lpthread -lm
PC
# the man page: the top-level usage and each command's --help, as preformatted sections
{
    echo '.TH EQPROP 1 "" "eqprop" "User Commands"'
    echo '.SH NAME'
    echo 'eqprop \- Equilibrium Propagation and spiking networks'
    echo '.SH SYNOPSIS'
    echo '.nf'
    "$B/eqprop" --help | sed 's/\\/\\\\/g; s/^\./\\\&./'
    echo '.fi'
    for c in train eval gradcheck export plot; do
        echo ".SH $(echo $c | tr a-z A-Z)"
        echo '.nf'
        "$B/eqprop" $c --help | sed 's/\\/\\\\/g; s/^\./\\\&./'
        echo '.fi'
    done
} > "$P/share/man/man1/eqprop.1"
echo "installed into $P"
