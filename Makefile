# The two commands: `make demo` and `make test`. Each installs what it needs and builds.
JOBS ?= 2
BUILD ?= build
ASAN_BUILD ?= build-asan

.PHONY: all build build-asan demo test unit-asan bench clean deps

all: build

deps:
	@scripts/deps.sh test

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCAIRN_SANITIZE=ON -DCAIRN_CLI_TESTS=OFF >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS) --target cairn_tests

demo: build
	@scripts/demo.sh $(BUILD)/cairn

# Every test: unit and CLI tests on the release build, then the unit tests under ASan+UBSan.
test: build build-asan
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 1200
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS) -L unit --timeout 1200

bench: build
	@scripts/deps.sh bench
	@bench/run.sh $(BUILD)/cairn

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
