# The two commands: `make demo` and `make test`. Each installs what it needs and builds.
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan

.PHONY: all build build-asan build-tsan demo test test-tsan bench clean deps

all: build

deps:
	@scripts/deps.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON -DCAIRN_CLI_TESTS=OFF >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS) --target cairn_tests

build-tsan: deps
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAIRN_SANITIZE_THREAD=ON -DCAIRN_CLI_TESTS=OFF >/dev/null
	@cmake --build $(TSAN_BUILD) -j$(JOBS) --target cairn_tests

demo: build
	@scripts/demo.sh $(BUILD)/cairn

# Every test: unit and CLI tests on the release build, the unit tests under ASan+UBSan, and the
# concurrency tests under TSan.
test: build build-asan build-tsan
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 1200
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS) -L unit --timeout 1200
	@$(MAKE) --no-print-directory test-tsan

test-tsan: build-tsan
	@cd $(TSAN_BUILD) && TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp halt_on_error=1" ctest --output-on-failure -R 'DedupDeleteRace|Aead.*Concurren|ChunkCache.*Concurren' --timeout 600

bench: build
	@scripts/deps.sh bench
	@bench/run.sh $(BUILD)/cairn

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
