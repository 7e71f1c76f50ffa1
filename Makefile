# dime-opa: the two commands of the quick start are `make run` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
export DIME_STORE ?= $(CURDIR)/var/dime.db
# No "Entering/Leaving directory" lines, here or in the makefiles cmake generates (MAKEFLAGS
# reaches them through the environment).
MAKEFLAGS += --no-print-directory

.PHONY: all deps build run test test-asan check-format fuzz clean distclean

all: build

deps:
	@./tools/install-deps.sh

# Configuring again is cheap and makes CMAKE_FLAGS take effect on an existing tree.
build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDIME_BUILD_BENCH=ON $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The demo: the engine on one organisation (tools/demo.sh), then two domains served by two dimed
# instances on 127.0.0.1 and 127.0.0.2 delivering to each other over DMTP, left running in the
# foreground until Ctrl-C (tools/demo-pair.sh). cmake's configure and progress lines go to
# /dev/null; warnings and errors are on stderr and still show.
run: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDIME_BUILD_BENCH=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target dime dimed >/dev/null
	@./tools/demo.sh $(BUILD)/bin/dime
	@exec ./tools/demo-pair.sh $(BUILD)/bin/dime

test: deps build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Unit tests, corpus replays, the batch tests and the CLI tests (label cli) under AddressSanitizer
# and UBSan (built with -fno-sanitize-recover: any finding fails its test; here with its stack).
test-asan: deps
	cmake -S . -B $(BUILD)-asan -DCMAKE_BUILD_TYPE=Debug -DDIME_SANITIZE=address,undefined $(CMAKE_FLAGS)
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS) -L 'unit|cli'

# The formatting check CI runs (clang-format 14, .clang-format).
check-format:
	./.ci/check-format.sh

# libFuzzer binaries (clang) and a short run of each.
fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(BUILD)-fuzz -DCMAKE_BUILD_TYPE=Debug -DDIME_FUZZ=ON
	cmake --build $(BUILD)-fuzz -j $(JOBS)
	./.ci/fuzz-short.sh $(BUILD)-fuzz

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-fuzz

distclean: clean
	rm -rf var
