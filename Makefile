# eqprop — build the library (static and shared), the `eqprop` command, tests and benchmarks.
#   make            library + command          make test    run the whole suite
#   make asan       suite under ASan+UBSan      make bench   benchmarks (ratios to sgemm)
#   make format     clang-format the sources    make clean
#   make fuzz       libFuzzer on every file reader (FUZZ_SECONDS each; fuzz/corpus/ seeds)
# -O3 (not -O2): GCC 12 leaves the relaxation's elementwise loops scalar at -O2, which costs
# ~40% of an EP epoch. -fno-math-errno lets sqrtf vectorise (Adam); it changes no IEEE result.
# Never -ffast-math: NaN checks must survive.
# Options: NATIVE=1 adds -march=native; WERROR=1 turns warnings into errors (CI sets it);
# MPI=1 builds with Open MPI (mpicc, -DEQP_MPI) into build-mpi/ for `mpirun -np P eqprop ...`.

ifeq ($(MPI),1)
CC       = mpicc
BUILD   ?= build-mpi
MPI_DEF  = -DEQP_MPI
else
CC      ?= cc
BUILD   ?= build
MPI_DEF  =
endif
OPT     ?= -O3
CFLAGS  ?=
WARN     = -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wcast-qual -Wdouble-promotion -Wfloat-conversion -Wformat=2 \
           -Wvla -Wundef
ifeq ($(WERROR),1)
WARN    += -Werror
endif
ifeq ($(NATIVE),1)
OPT     += -march=native
endif
ALLCFLAGS = -std=c11 $(OPT) -fno-math-errno -g -fPIC -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
            -Iinclude -Isrc/core $(MPI_DEF) $(WARN) $(CFLAGS) -MMD -MP
# libhdf5 (NIR files, src/io/nir.c): Debian's serial build; its headers as system headers so
# that our warning flags do not apply to them.
HDF5_CFLAGS ?= $(patsubst -I%,-isystem %,$(shell pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial))
HDF5_LIBS   ?= $(shell pkg-config --libs hdf5 2>/dev/null || echo -lhdf5_serial)
ALLCFLAGS += $(HDF5_CFLAGS)
LDLIBS  = $(HDF5_LIBS) -lopenblas -lz -lpthread -lm

LIB_SRC   := $(sort $(wildcard src/*/*.c))
TOOL_SRC  := $(sort $(wildcard tools/*.c))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
EX_SRC    := $(sort $(wildcard examples/*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ  := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
EX_BIN    := $(EX_SRC:examples/%.c=$(BUILD)/examples/%)

.PHONY: all test asan bench format clean fuzz fuzz-corpus reliability install mpi-test mpi-bench
PREFIX ?= /usr/local
all: $(BUILD)/libeqprop.a $(BUILD)/libeqprop.so $(BUILD)/eqprop $(EX_BIN)

$(BUILD)/obj/%.o: %.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -c $< -o $@

$(BUILD)/libeqprop.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/libeqprop.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS) $(CFLAGS)

$(BUILD)/eqprop: $(TOOL_OBJ) $(BUILD)/libeqprop.a
	$(CC) $(ALLCFLAGS) -o $@ $(TOOL_OBJ) $(BUILD)/libeqprop.a $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test.h $(BUILD)/libeqprop.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -Itests -o $@ $< $(BUILD)/libeqprop.a $(LDLIBS)

$(BUILD)/examples/%: examples/%.c $(BUILD)/libeqprop.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -o $@ $< $(BUILD)/libeqprop.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c bench/bench_common.h $(BUILD)/libeqprop.a
	@mkdir -p $(dir $@)
	$(CC) $(ALLCFLAGS) -o $@ $< $(BUILD)/libeqprop.a $(LDLIBS)

test: all $(TEST_BIN)
	@BUILD=$(BUILD) sh tests/run.sh $(TEST_BIN)

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer" \
	    CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test

# Data-parallel training (Open MPI: mpicc, mpirun): the MPI build in build-mpi/, then
# tests/mpi/test_mpi under mpirun -np 2 and a sweep through the command.
mpi-test:
	$(MAKE) MPI=1 all build-mpi/tests/mpi/test_mpi
	@sh tests/mpi/run.sh build-mpi

mpi-bench:
	$(MAKE) MPI=1 all
	@sh bench/mpi_scaling.sh build-mpi

bench: all $(BENCH_BIN)
	@for b in $(BENCH_BIN); do $$b || exit 1; done

# Fuzzing (clang + libFuzzer, Debian's clang-14 and libclang-rt-14-dev): every file reader
# runs FUZZ_SECONDS on its seed corpus (fuzz/corpus/NAME) plus what it finds (build-fuzz/).
FUZZ_SECONDS ?= 60
FUZZ_NAMES   := idx checkpoint config snnfile bpfile nir nirgraph snnconfig
FUZZ_FLAGS    = -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Iinclude -Isrc/core $(HDF5_CFLAGS)
build-fuzz/fuzz_%: fuzz/fuzz_%.c fuzz/fuzz_common.h fuzz/fuzz_nir_check.h $(LIB_SRC)
	@mkdir -p build-fuzz
	clang $(FUZZ_FLAGS) -o $@ $< $(LIB_SRC) $(LDLIBS)

fuzz-corpus: $(BUILD)/libeqprop.a
	@mkdir -p build-fuzz $(FUZZ_NAMES:%=fuzz/corpus/%)
	$(CC) $(ALLCFLAGS) -o build-fuzz/make_corpus fuzz/make_corpus.c $(BUILD)/libeqprop.a $(LDLIBS)
	build-fuzz/make_corpus

fuzz: $(FUZZ_NAMES:%=build-fuzz/fuzz_%)
	@for f in $(FUZZ_NAMES); do \
	    mkdir -p build-fuzz/corpus-$$f; \
	    echo "fuzz_$$f: $(FUZZ_SECONDS) s"; \
	    LSAN_OPTIONS=suppressions=fuzz/lsan.supp build-fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	        -print_final_stats=1 build-fuzz/corpus-$$f fuzz/corpus/$$f 2>&1 | \
	        grep -E "^stat::number_of_executed_units|^stat::peak_rss|ERROR|SUMMARY|Test unit" || true; \
	    test -z "$$(ls crash-* leak-* timeout-* 2>/dev/null)" || { echo "fuzz_$$f found a crash"; exit 1; }; \
	done

# Robustness (docs/RELIABILITY.md): fuzz-corpus replay, the bad-input corpus, 20 kill -9 /
# --resume cycles, then every fuzz harness for FUZZ_SECONDS. Each part ends "N passed, N failed".
reliability: all $(BUILD)/tests/test_reliability $(BUILD)/tests/test_kill
	@$(BUILD)/tests/test_reliability | tail -n 6
	@sh scripts/reliability.sh
	@$(BUILD)/tests/test_kill | tail -n 2
	@sh scripts/reliability_fuzz.sh $(FUZZ_SECONDS)

# headers, libraries, the command, eqprop.pc, the man page (from --help), the Python package
install: all
	sh scripts/install.sh $(BUILD) $(PREFIX)

format:
	clang-format -i $(LIB_SRC) $(TOOL_SRC) $(TEST_SRC) $(BENCH_SRC) $(EX_SRC) include/eqprop/*.h src/*/*.h tests/*.h

clean:
	rm -rf build build-asan build-fuzz build-mpi

-include $(LIB_OBJ:.o=.d) $(TOOL_OBJ:.o=.d) $(TEST_BIN:=.d) $(BENCH_BIN:=.d) $(EX_BIN:=.d)
