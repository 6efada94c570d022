#!/bin/sh
# The bad-input corpus (tests/reliability/cases.txt): malformed files and bad command lines.
# Each case must exit with the expected code (never a signal), print its specific message on
# stderr, finish within 30 s, and leave a good model file ($T/good.eqp) byte-identical.
# A case starting with FSIZE runs under `ulimit -f 64` with SIGXFSZ ignored: the write fails
# as on a full disk. Ends "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
bin=$PWD/build/eqprop
D=tests/data/mnist-sample
T=$(mktemp -d)
# a budget the sample runs never reach, so that an absurd --sizes is refused, not attempted
export EQPROP_MEMORY_LIMIT=256M
passed=0
failed=0
# --- the files ---
"$bin" train --data $D --train-limit 40 --test-limit 10 --sizes 784-8-10 --epochs 1 \
    --save "$T/good.eqp" --quiet >/dev/null 2>&1 || { echo "cannot make the good model"; exit 1; }
"$bin" train --preset snn-mlp --data $D --train-limit 20 --test-limit 10 --sizes 784-8-10 \
    --steps 3 --epochs 1 --save "$T/snn.model" --quiet >/dev/null 2>&1
cp "$T/good.eqp" "$T/good.ref"
: > "$T/empty.eqp"
head -c 300 /dev/urandom > "$T/random.eqp"
cp "$T/good.eqp" "$T/flipped.eqp"
printf '\377' | dd of="$T/flipped.eqp" bs=1 seek=100 conv=notrunc 2>/dev/null
head -c 200 "$T/good.eqp" > "$T/truncated.eqp"
cp "$T/good.eqp" "$T/version.eqp"
printf '\007' | dd of="$T/version.eqp" bs=1 seek=8 conv=notrunc 2>/dev/null
cp "$T/snn.model" "$T/snn-flipped.model"
printf '\377' | dd of="$T/snn-flipped.model" bs=1 seek=60 conv=notrunc 2>/dev/null
python3 - "$T/lying.eqp" <<'PY'
import struct, sys, zlib
t = b"sizes=784-100000-10\n"
b = b"EQPROPCK" + struct.pack("<III", 1, 0, len(t)) + t + struct.pack("<Q", 10) + bytes(40)
open(sys.argv[1], "wb").write(b + struct.pack("<I", zlib.crc32(b)))
PY
mkdir -p "$T/emptydir"
# IDX directories: copies of the sample with one file broken
mkidx() { mkdir -p "$T/$1"; cp $D/* "$T/$1/"; }
mkidx idx-empty; : > "$T/idx-empty/train-images-idx3-ubyte"; rm -f "$T/idx-empty/train-images-idx3-ubyte.gz"
mkidx idx-swapped; rm -f "$T/idx-swapped/train-images-idx3-ubyte.gz"
cp "$T/idx-swapped/train-labels-idx1-ubyte.gz" "$T/idx-swapped/train-images-idx3-ubyte.gz"
mkidx idx-shorthdr; rm -f "$T/idx-shorthdr/train-images-idx3-ubyte.gz"
printf '\000\000\010\003\000\000' > "$T/idx-shorthdr/train-images-idx3-ubyte"
mkidx idx-trailing; gzip -dc $D/train-images-idx3-ubyte.gz > "$T/idx-trailing/train-images-idx3-ubyte"
printf 'xx' >> "$T/idx-trailing/train-images-idx3-ubyte"; rm -f "$T/idx-trailing/train-images-idx3-ubyte.gz"
mkidx idx-truncated; gzip -dc $D/train-images-idx3-ubyte.gz | head -c 5000 > "$T/idx-truncated/train-images-idx3-ubyte"
rm -f "$T/idx-truncated/train-images-idx3-ubyte.gz"
mkidx idx-absurd; rm -f "$T/idx-absurd/train-images-idx3-ubyte.gz"
printf '\000\000\010\003\377\377\377\377\000\001\000\000\000\001\000\000' > "$T/idx-absurd/train-images-idx3-ubyte"
mkidx idx-gztrunc; head -c 3000 $D/train-images-idx3-ubyte.gz > "$T/idx-gztrunc/train-images-idx3-ubyte.gz"
mkidx idx-badlabel; gzip -dc $D/train-labels-idx1-ubyte.gz > "$T/idx-badlabel/train-labels-idx1-ubyte"
printf '\014' | dd of="$T/idx-badlabel/train-labels-idx1-ubyte" bs=1 seek=20 conv=notrunc 2>/dev/null
rm -f "$T/idx-badlabel/train-labels-idx1-ubyte.gz"
mkidx idx-count; gzip -dc $D/train-labels-idx1-ubyte.gz | head -c 108 > "$T/idx-count/train-labels-idx1-ubyte"
printf '\000\000\000\144' | dd of="$T/idx-count/train-labels-idx1-ubyte" bs=1 seek=4 conv=notrunc 2>/dev/null
rm -f "$T/idx-count/train-labels-idx1-ubyte.gz"
# --- the cases ---
n=0
while IFS= read -r line; do
    case "$line" in '#'*|'') continue ;; esac
    want=$(echo "$line" | cut -d'|' -f1 | tr -d ' ')
    msg=$(echo "$line" | cut -d'|' -f2 | sed 's/^ //; s/ $//')
    args=$(echo "$line" | cut -d'|' -f3- | sed 's/^ //')
    n=$((n + 1))
    fsize=0
    case "$args" in FSIZE\ *) fsize=1; args=${args#FSIZE } ;; esac
    args=$(echo "$args" | sed "s#\\\$T#$T#g; s#\\\$D#$D#g")
    # shellcheck disable=SC2086
    if [ "$fsize" -eq 1 ]; then
        (trap '' XFSZ; ulimit -f 64; timeout 30 "$bin" $args) > "$T/out" 2> "$T/err"
    else
        timeout 30 "$bin" $args > "$T/out" 2> "$T/err" < /dev/null
    fi
    rc=$?
    why=""
    [ "$rc" -eq 124 ] && why="hang (timeout)"
    [ -z "$why" ] && [ "$rc" -gt 128 ] && why="killed by signal $((rc - 128))"
    [ -z "$why" ] && [ "$rc" -ne "$want" ] && why="exit $rc, expected $want"
    [ -z "$why" ] && ! grep -qF -- "$msg" "$T/err" && why="message not found: '$msg'"
    [ -z "$why" ] && ! cmp -s "$T/good.eqp" "$T/good.ref" && why="the good model was overwritten"
    [ -z "$why" ] && ls "$T"/good.eqp.tmp.* >/dev/null 2>&1 && why="a temporary file was left"
    if [ -z "$why" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED case $n: eqprop $args: $why"
        head -c 400 "$T/err"
        cp "$T/good.ref" "$T/good.eqp"
    fi
done < tests/reliability/cases.txt
rm -rf "$T"
echo "bad-input corpus: $n cases (malformed files and command lines)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
