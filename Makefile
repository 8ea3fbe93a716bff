# Samenplan — the two commands are `make run` and `make test`.
GO      ?= go
BIN     := bin/samenplan
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
ADDR    ?= :8080
DATA    ?= ./data

.PHONY: all build run test deps vet fmt-check lint bench soak fuzz clean web web-deps web-test chromium mobile mobile-deps mobile-test sdk-test

all: build

## build: the samenplan binary (clients embedded)
build: web mobile
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/samenplan

## run: build and start the server with the demo data on ./data
run: build
	./$(BIN) serve --demo --data $(DATA) --rules ./rules/regions --addr $(ADDR)

## web: the web client (clients/web) built into clients/web/dist, which the binary embeds
web: web-deps
	cd clients/web && npm run --silent build

## web-deps: the web client's npm packages, exactly as package-lock.json says; npm ci (which
## empties node_modules first) runs only when the lock file is newer than the last install,
## so a build does not pull node_modules from under a test run in the same tree
web-deps: clients/web/node_modules/.package-lock.json
clients/web/node_modules/.package-lock.json: clients/web/package-lock.json
	cd clients/web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## mobile: the coach app (clients/mobile/app) built into clients/mobile/app/dist, which the
## binary embeds and serves at /coach/
mobile: mobile-deps
	cd clients/mobile/app && npm run --silent build

## mobile-deps: the coach app's npm packages, installed like web-deps (npm ci only when its
## package-lock.json is newer than the last install)
mobile-deps: clients/mobile/app/node_modules/.package-lock.json
clients/mobile/app/node_modules/.package-lock.json: clients/mobile/app/package-lock.json
	cd clients/mobile/app && npm ci --no-audit --no-fund --loglevel=error
	touch $@

## deps: everything the tests need (Go modules, the clients' npm packages, Chromium)
deps: web-deps mobile-deps chromium
	$(GO) mod download

## chromium: Debian's Chromium for the browser tests, installed when /usr/bin/chromium is
## missing (as root, or with sudo). The tests never download a browser of their own.
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	fi

## web-test: the browser tests (clients/web/test, node --test + playwright-core) against the
## freshly built binary with demo data; screenshots land in clients/web/screenshots/
web-test: build
	cd clients/web && SAMENPLAN_BIN=$(CURDIR)/bin/samenplan npm test

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## mobile-test: the coach app's browser tests (clients/mobile/app/test, node --test +
## playwright-core through clients/web/test/harness.mjs) against the freshly built binary
mobile-test: build
	cd clients/mobile/app && SAMENPLAN_BIN=$(CURDIR)/bin/samenplan npm test

## sdk-test: the sync SDK's tests (clients/mobile/sdk: unit tests, the shared vectors, and the
## integration test against the freshly built binary)
sdk-test: build
	cd clients/mobile/sdk && npm ci --no-audit --no-fund --loglevel=error && SAMENPLAN_BIN=$(CURDIR)/bin/samenplan npm test

## test: vet, gofmt, every test with the race detector, a short fuzz run, the SDK's tests,
## the browser tests
test: deps fmt-check vet web mobile
	cd clients/web && npm run --silent typecheck
	cd clients/mobile/app && npm run --silent typecheck
	$(MAKE) sdk-test
	$(GO) test -race -count=1 -timeout 12m ./...
	$(MAKE) fuzz FUZZTIME=20000x
	$(MAKE) web-test
	$(MAKE) mobile-test

## fuzz: each fuzz target for FUZZTIME (20,000 inputs in make test: a count, not a duration,
## because a duration can end inside minimisation and fail with "context deadline exceeded";
## 2 minutes each in make soak), starting from its committed corpus (testdata/fuzz/<target>/).
## 18 targets × 20,000 inputs took 114 s here (2 cores, load average 8-12, builds cached);
## the slowest are the in-process server targets (FuzzCaseAndRulesRequests ~25 s,
## FuzzWorkflowRequests ~20 s). A failing input is written to testdata/fuzz/<target>/:
## commit it with the fix, so it stays a regression test.
FUZZTIME ?= 20000x
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$t"; start=$$(date +%s); \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg; \
	    echo "fuzz $$pkg $$t: $$(( $$(date +%s) - start )) s"; \
	  done; \
	done

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

## bench: the Go benchmarks, then the load command (samenplan bench: 500 devices over HTTP on
## loopback, the SQLite ceiling, memory, startup with a million fields, the peer workload
## against pouchdb-server from bench/peer) and its one table (docs/benchmarks.md); BENCHFLAGS
## passes flags to it (e.g. BENCHFLAGS='--duration 60s'). bench/peer is installed here only,
## like web-deps (npm ci when its lock file is newer than the last install; --ignore-scripts:
## leveldown loads the prebuilt binary its npm package ships, bench/peer/README.md)
BENCHFLAGS ?=
bench: bench/peer/node_modules/.package-lock.json
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...
	$(GO) run ./cmd/samenplan bench --rules ./rules/regions $(BENCHFLAGS)
bench/peer/node_modules/.package-lock.json: bench/peer/package-lock.json
	cd bench/peer && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

## soak: the long versions (fuzzing, crash loops)
soak:
	$(MAKE) fuzz FUZZTIME=2m
	SAMENPLAN_SOAK=1 $(GO) test -race -count=1 -timeout 60m ./...

clean:
	rm -rf bin
