# The two commands: `make demo` and `make test`. Each installs what it needs and builds.
# `make style` (run first by `make test`): clang-format clean, no raw file I/O outside the
# backend, no function in src/ over 80 lines.
JOBS ?= 2
# The release tree's tests and the ASan unit tests: one more than the cores, since the kill -9,
# cluster and NBD tests spend a fifth of their time waiting (2 cores: 21% idle at -j2, 5% at -j3,
# 475 s -> 420 s), and the ASan unit tests a quarter in fsync and the like (148 s -> 117 s).
TEST_JOBS ?= $(shell echo $$(( $(JOBS) + 1 )))
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
FUZZ_SECONDS ?= 600

.PHONY: all build build-asan build-tsan build-fuzz demo style test test-tsan test-rados fuzz bench clean deps stress

all: build

# Ceph (mon, OSD, librados) comes with the test packages: `make test` runs the backend, index and
# CLI tests against a throw-away local cluster as well as locally.
deps:
	@scripts/deps.sh test rados

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_RADOS=ON >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The sanitizer trees run the unit tests only (no cluster), so they leave RADOS out.
# The ASan + UBSan tree is clang's, built with libFuzzer coverage: it holds both the unit tests
# and the libFuzzer targets (fuzz/*_fuzz.cc), so their library is compiled once, not twice. GCC 12
# stays the warning gate (the release tree); clang 14 cannot compile Ceph's buffer.h in C++20.
# (-DCAIRN_SANITIZE=ON builds the same tests under GCC's ASan + UBSan, without fuzzers.)
build-asan: deps
	@grep -qs 'CMAKE_CXX_COMPILER:.*clang' $(ASAN_BUILD)/CMakeCache.txt || rm -rf $(ASAN_BUILD) # a GCC tree of before
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_FUZZ=ON -DCAIRN_RADOS=OFF -DCAIRN_CLI_TESTS=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS) --target cairn_tests fuzzers

build-tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_SANITIZE_THREAD=ON -DCAIRN_RADOS=OFF -DCAIRN_CLI_TESTS=OFF >/dev/null
	@cmake --build $(TSAN_BUILD) -j$(JOBS) --target cairn_tsan_tests

build-fuzz: build-asan

# Each fuzzer for FUZZ_SECONDS (default 600) from the seed corpus; make test runs 10 s each.
fuzz: build-asan
	@JOBS=$(JOBS) scripts/fuzz.sh $(ASAN_BUILD) $(FUZZ_SECONDS)

demo: build
	@scripts/demo.sh $(BUILD)/cairn

# Formatting (scripts/check_format.sh), no raw file I/O outside the backend
# (scripts/check-raw-io.sh) and no function in src/ over 80 lines (scripts/check_function_size.py:
# Universal Ctags finds each function and its closing brace, about a second for all of src/).
style: deps
	@scripts/check_format.sh
	@scripts/check-raw-io.sh
	@scripts/check_function_size.py

# Left out under ASan (it runs in the release build's ctest): a dedup-quality measurement over
# 100 MB through the same put path the other ASan tests cover with less data; 13-26 s under ASan.
ASAN_SKIP := ^ObjectsDefaults[.]OneByteInsertInTheMiddleOf100MBAddsAtMost3Chunks$$

# Every test: the style checks, unit and CLI tests on the release build, the unit tests under
# ASan+UBSan, the concurrency tests under TSan, and each fuzzer for 10 s. The release build's
# ctest includes the `rados` label: a ctest fixture starts a local Ceph cluster (scripts/ceph-local.sh) for the RADOS
# backend, index, repository and CLI tests (tests/rados/test_cli.sh) and stops it after;
# tests/rados/test_faults.sh starts and kills a 3-OSD cluster of its own.
test: style build-asan build build-tsan
	@cd $(BUILD) && ctest --output-on-failure -j$(TEST_JOBS) --timeout 1200
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(TEST_JOBS) -L unit -E "$(ASAN_SKIP)" --timeout 1200
	@$(MAKE) --no-print-directory test-tsan
	@JOBS=$(JOBS) scripts/fuzz.sh $(ASAN_BUILD) 10

test-tsan: build-tsan
	@cd $(TSAN_BUILD) && TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1" ctest --output-on-failure -j$(JOBS) -L tsan --timeout 600

# cairn-stress for as long as asked (STRESS_SECONDS, default 600): half of it simulated power
# cuts in one process, half kill -9 of a writer process; each followed by recovery, check and a
# comparison of every object and vdisk with the model. `make test` runs a short run of each.
STRESS_SECONDS ?= 600
stress: build
	@$(BUILD)/cairn-stress crash --seconds $$(( $(STRESS_SECONDS) / 2 ))
	@$(BUILD)/cairn-stress kill --seconds $$(( $(STRESS_SECONDS) - $(STRESS_SECONDS) / 2 ))

# Only the RADOS tests (`ctest -L rados`: backend, index, repository, CLI and fault tests) against
# throw-away local Ceph clusters, started and stopped by the tests' fixtures.
test-rados: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L rados --timeout 1200

bench: build
	@scripts/deps.sh bench
	@bench/run.sh $(BUILD)/cairn

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD)
