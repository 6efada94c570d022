#!/bin/sh
# Run every libFuzzer harness (fuzz/fuzz_*.c) for SECONDS each, one after the other on one
# core under nice, on its seed corpus (fuzz/corpus/NAME), the regression inputs
# (tests/reliability/fuzz-regress/NAME-*) and what earlier runs found (build-fuzz/corpus-NAME).
# Prints one line per harness: name, seconds, executions, exec/s, coverage, corpus size, and
# "crash FILE" if one was found (the input is kept in build-fuzz/found/).
# Usage: scripts/reliability_fuzz.sh [SECONDS [NAMES...]]   (default 60 s, every harness;
# FUZZ_NOBUILD=1 runs the binaries already in build-fuzz/)
# Ends "N passed, N failed" (a harness fails if it crashes, leaks, times out or runs out of memory).
set -u
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
names=${*:-$(ls fuzz/fuzz_*.c | sed 's|fuzz/fuzz_\(.*\)\.c|\1|' | grep -v common)}
command -v clang >/dev/null 2>&1 || { echo "fuzz: clang not found (apt-get install clang-14 libclang-rt-14-dev)"; echo "0 passed, 1 failed"; exit 1; }
[ "${FUZZ_NOBUILD:-0}" = 1 ] || nice -n 15 make -s $(for n in $names; do printf 'build-fuzz/fuzz_%s ' "$n"; done) >/dev/null || { echo "fuzz: build failed"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p build-fuzz/found
passed=0
failed=0
for n in $names; do
    mkdir -p "build-fuzz/corpus-$n"
    # the regression inputs join the run's corpus, so each run replays them first
    for r in tests/reliability/fuzz-regress/"$n"-*; do
        [ -f "$r" ] && cp "$r" "build-fuzz/corpus-$n/"
    done
    log=build-fuzz/fuzz_$n.log
    work=$(mktemp -d)
    (cd "$work" && nice -n 15 "$OLDPWD/build-fuzz/fuzz_$n" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
        "$OLDPWD/build-fuzz/corpus-$n" "$OLDPWD/fuzz/corpus/$n") > "$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
    cov=$(echo "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    corp=$(echo "$done_line" | sed -n 's/.*corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p')
    eps=$(echo "$done_line" | sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p')
    found=$(ls "$work" 2>/dev/null | grep -E '^(crash|leak|timeout|oom|slow-unit)-' | head -n 1)
    if [ -n "$found" ]; then
        cp "$work/$found" "build-fuzz/found/$n-$found"
    fi
    rm -rf "$work"
    if [ "$rc" -eq 0 ] && [ -z "$found" ]; then
        passed=$((passed + 1))
        echo "fuzz_$n: ${secs} s, ${execs:-?} executions (${eps:-?}/s), coverage ${cov:-?}, corpus ${corp:-?}, no crash"
    else
        failed=$((failed + 1))
        grep -E 'ERROR|SUMMARY' "$log" | head -n 3
        echo "fuzz_$n: ${secs} s, ${execs:-?} executions: FOUND ${found:-a failure (exit $rc)} -> build-fuzz/found/$n-$found (log $log)"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
