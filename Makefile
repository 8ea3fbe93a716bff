# Samenplan — the two commands are `make run` and `make test`.
GO      ?= go
BIN     := bin/samenplan
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
ADDR    ?= :8080
DATA    ?= ./data

.PHONY: all build run test deps vet fmt-check lint bench soak fuzz clean web web-deps

all: build

## build: the samenplan binary (clients embedded)
build: web
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/samenplan

## run: build and start the server with the demo data on ./data
run: build
	./$(BIN) serve --demo --data $(DATA) --rules ./rules/regions --addr $(ADDR)

## web: the web client (clients/web) built into clients/web/dist, which the binary embeds
web: web-deps
	cd clients/web && npm run --silent build

## web-deps: the web client's npm packages, exactly as package-lock.json says
web-deps:
	cd clients/web && npm ci --no-audit --no-fund --loglevel=error

## deps: everything the tests need (Go modules, the web client's npm packages)
deps: web-deps
	$(GO) mod download

fmt-check:
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

## test: vet, gofmt, every test with the race detector, a short fuzz run
test: deps fmt-check vet web
	cd clients/web && npm run --silent typecheck
	$(GO) test -race -count=1 -timeout 12m ./...
	$(MAKE) fuzz FUZZTIME=20000x

## fuzz: each fuzz target for FUZZTIME (20,000 inputs in make test: a count, not a duration,
## because a duration can end inside minimisation and fail with "context deadline exceeded";
## 2 minutes each in make soak)
FUZZTIME ?= 20000x
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
	  for t in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/func //'); do \
	    echo "fuzz $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 100x $$pkg; \
	  done; \
	done

lint: vet
	$(GO) run honnef.co/go/tools/cmd/staticcheck@latest ./...

## bench: the benchmark table (docs/benchmarks.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./...

## soak: the long versions (fuzzing, crash loops)
soak:
	$(MAKE) fuzz FUZZTIME=2m
	SAMENPLAN_SOAK=1 $(GO) test -race -count=1 -timeout 60m ./...

clean:
	rm -rf bin
