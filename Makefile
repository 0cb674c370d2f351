# Front door. `make demo` and `make test` install missing Debian packages,
# build (Release, build/) and run. Sanitizer builds go to build-tsan/ and
# build-asan/.
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps deps-bench build demo test tsan asan install-check bench soak format ci clean

all: build

deps:
	@scripts/setup-deps.sh

deps-bench:
	@scripts/setup-deps.sh --bench

build: deps
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS)

demo: build
	./run_demo.sh --mode=golden

test: build
	cd build && ctest --output-on-failure -j $(JOBS) --timeout 600

# Queue tests (unit + stress, threads) under ThreadSanitizer. The KV store is left out: its
# threads meet only in gRPC (not TSan-instrumented) and in the Raft loop's Inbox, whose stress
# test (tests/stress/kv_inbox_threads_test.cpp) needs no gRPC and runs here.
tsan: deps
	cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGWIRE_SANITIZE=thread \
	  -DRINGWIRE_BUILD_BENCH=OFF -DRINGWIRE_BUILD_KV=OFF
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
	  RINGWIRE_STRESS_SCALE=tsan ctest --output-on-failure -j $(JOBS) -L 'unit|stress' -LE noTSAN --timeout 900

# Everything but the multi-process KV cluster tests (their timing is tuned for Release builds;
# the KV unit tests and the cli demo modes do run here) under ASan + UBSan.
asan: deps
	cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRINGWIRE_SANITIZE=address \
	  -DRINGWIRE_BUILD_BENCH=OFF
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1 print_stacktrace=1" \
	  ctest --output-on-failure -j $(JOBS) --timeout 900 -LE cluster

# Installs into a scratch prefix and builds examples/consumer against it.
install-check: build
	rm -rf build/_install build/_consumer
	cmake --install build --prefix build/_install
	cmake -S examples/consumer -B build/_consumer -G Ninja -DCMAKE_PREFIX_PATH=$(CURDIR)/build/_install
	cmake --build build/_consumer
	./build/_consumer/ringwire_consumer
	c++ examples/consumer/main.cpp -o build/_consumer/ringwire_consumer_pc \
	  $$(PKG_CONFIG_PATH=$(CURDIR)/build/_install/lib/pkgconfig pkg-config --cflags --libs ringwire)
	./build/_consumer/ringwire_consumer_pc

bench: deps-bench
	cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build build -j $(JOBS)
	bench/run_benchmarks.sh

# Fault-injection soak (docs/reliability.md): 5 members, every fault, DURATION seconds
# (default 30 min); needs root (network namespaces). SEED=0 picks one (printed).
DURATION ?= 1800
SEED ?= 0
soak: build
	build/bin/kv_faults --nodes 5 --duration $(DURATION) --faults all --clients 10 --keys 8 \
	  --seed $(SEED) --out build/soak

format:
	git ls-files '*.hpp' '*.cpp' | xargs clang-format -i

ci: test tsan asan install-check

clean:
	rm -rf build build-tsan build-asan
