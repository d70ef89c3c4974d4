# wisp — see README.md. `make run` starts a single node; `make test` installs
# what the tests need and runs them.
GO          ?= go
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X github.com/wispbus/wisp/internal/cli.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
# -race needs cgo; the shipped binary does not.
RACE        ?= -race
TESTFLAGS   ?= -timeout 25m
FUZZTIME    ?= 10s
COMPOSE     ?= $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose)

.PHONY: all build run test test-deps check fuzz bench bench-full clean wasm examples docker cluster-up cluster-down

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/wisp ./cmd/wisp

run: build
	./bin/wisp serve

# A FROM scratch image around the static binary (no base image to pull).
docker: build
	docker build -t wisp:latest -f deploy/Dockerfile bin

# Three nodes in containers (deploy/docker-compose.yml).
cluster-up: docker
	$(COMPOSE) -f deploy/docker-compose.yml up -d

cluster-down:
	$(COMPOSE) -f deploy/docker-compose.yml down -v

test-deps:
	./scripts/test-deps.sh

test: test-deps build
	WISP_BIN=$(CURDIR)/bin/wisp $(GO) test $(RACE) $(TESTFLAGS) ./...

# The scripted scenario of every example (examples/*/), each against a fresh node.
examples: test-deps build
	WISP_BIN=$(CURDIR)/bin/wisp $(GO) test -count=1 ./examples/...

check:
	@echo '== gofmt'; out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^bench/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@echo '== go vet'; $(GO) vet ./...
	@echo '== staticcheck'; $(GO) run $(STATICCHECK) ./...
	@echo '== go mod tidy'; $(GO) mod tidy && git diff --exit-code go.mod go.sum

# A short run of every fuzz target (seeds under testdata/fuzz always run in `make test`).
fuzz:
	./scripts/fuzz.sh $(FUZZTIME)

# Side by side with NATS JetStream (bench/ is its own module); writes docs/benchmarks.md.
bench: build
	cd bench && $(GO) run ./cmd/wispbench -short -wisp-bin ../bin/wisp -out ../docs/benchmarks.md

bench-full: build
	cd bench && $(GO) run ./cmd/wispbench -full -wisp-bin ../bin/wisp -out ../docs/benchmarks.md

clean:
	rm -rf bin wisp-data bench.out

# The example WASM functions of sdk-wasm/examples, built into bin/wasm/.
wasm:
	mkdir -p bin/wasm
	cd sdk-wasm && for d in examples/*/; do GOOS=wasip1 GOARCH=wasm $(GO) build -trimpath -buildmode=c-shared -o ../bin/wasm/$$(basename $$d).wasm ./$$d || exit 1; done

# The fault-injection suite (chaos/; needs root, iproute2, iptables, tc):
# separate `wisp serve` processes in their own network namespaces under a
# nemesis, checked for lost, duplicated and reordered acks and diverged
# replicas (docs/reliability.md). `chaos` draws CHAOS_COUNT scenarios with
# CHAOS_SEED (printed; set it to repeat a run); `chaos-full` runs every
# scenario on 3 and on 5 nodes with longer faults.
.PHONY: chaos chaos-full
CHAOS_SEED  ?=
CHAOS_COUNT ?= 6

chaos: build
	CHAOS_SEED=$(CHAOS_SEED) CHAOS_COUNT=$(CHAOS_COUNT) CHAOS_SUMMARY=$(CURDIR)/bin/chaos-summary.md WISP_BIN=$(CURDIR)/bin/wisp \
		$(GO) test -count=1 -timeout 10m -v -run TestChaos ./chaos

chaos-full: build
	CHAOS_FULL=1 CHAOS_SEED=$(CHAOS_SEED) CHAOS_SUMMARY=$(CURDIR)/bin/chaos-full-summary.md WISP_BIN=$(CURDIR)/bin/wisp \
		$(GO) test -count=1 -timeout 60m -v -run TestChaos ./chaos
