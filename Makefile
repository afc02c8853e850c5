# The two commands a newcomer needs (see README.md):
#   make run    install what is missing, build, start weftd with every plugin
#   make test   install what is missing, build, run the whole suite, then the
#               same suite under AddressSanitizer + UndefinedBehaviorSanitizer
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CONFIG     ?= config/weft.ini

.PHONY: all deps build build-asan run test test-plain test-asan bench clean \
        web web-asan node-check

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)

# The web client (web/: Vite + Tailwind, see web/README.md) is built into
# $(BUILD)/web (served at / by [server] web_root) and into each plugin's
# asset folder, $(BUILD)/plugins/<name>.web/widget.js. `npm ci` runs again
# only when a package.json or package-lock.json changed. The browser tests'
# packages (tests/browser, playwright-core) are installed for `make test`.
NPM    ?= npm
NPM_CI  = $(NPM) ci --no-audit --no-fund --loglevel=error

node-check:
	@command -v node >/dev/null 2>&1 && command -v $(NPM) >/dev/null 2>&1 || \
	  { echo "make: the web client needs Node.js >= 20.19 and npm; neither is a Debian 12 package that new" >&2; exit 1; }
	@node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a===20&&b>=19)?0:1)' || \
	  { echo "make: the web client needs Node.js >= 20.19 (found $$(node --version))" >&2; exit 1; }

web/node_modules/.package-lock.json: web/package.json web/package-lock.json | node-check
	cd web && $(NPM_CI)

tests/browser/node_modules/.package-lock.json: tests/browser/package.json tests/browser/package-lock.json | node-check
	cd tests/browser && $(NPM_CI)

web: web/node_modules/.package-lock.json
	cd web && WEFT_BUILD_DIR=$(abspath $(BUILD)) $(NPM) run --silent build

web-asan: web/node_modules/.package-lock.json
	cd web && WEFT_BUILD_DIR=$(abspath $(ASAN_BUILD)) $(NPM) run --silent build

run: build web
	./$(BUILD)/weftd --config $(CONFIG)

test-plain: build web tests/browser/node_modules/.package-lock.json
	cd $(BUILD) && ctest --output-on-failure --timeout 600

# Any sanitizer report fails the test that caused it.
test-asan: build-asan web-asan tests/browser/node_modules/.package-lock.json
	cd $(ASAN_BUILD) && \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	ctest --output-on-failure --timeout 900

test: test-plain test-asan

bench: build
	bench/http_hello.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
