# The two commands a newcomer needs (see README.md):
#   make run    install what is missing, build, start weftd with every plugin
#   make test   install what is missing, build, run the whole suite, then the
#               same suite under AddressSanitizer + UndefinedBehaviorSanitizer
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= config/weft.ini

.PHONY: all deps build build-asan run test test-plain test-asan bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)

run: build
	./$(BUILD)/weftd --config $(CONFIG)

test-plain: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600

# Any sanitizer report fails the test that caused it.
test-asan: build-asan
	cd $(ASAN_BUILD) && \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure --timeout 900

test: test-plain test-asan

bench: build
	bench/http_hello.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
