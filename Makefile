# The project's commands. `make` alone prints this help.
# Everything needs only Go and a Debian machine: `make test` and `make demo`
# install and start the service stack themselves (scripts/services.sh up).

SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO         ?= go
PKGS       ?= ./...
# Packages with benchmarks; grows as benchmarks land next to their baselines.
BENCH_PKGS ?= ./shared/... ./consumer/internal/pipeline ./backfill/... ./alert/... ./deploy/...
BENCHTIME  ?= 1s
BINARIES   := producer consumer backfill migrate query alert
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -X github.com/flexipack/cutover/shared/cliapp.Version=$(VERSION)

# Runs a command with the service addresses the binaries and tests read.
WITH_ENV = eval "$$(scripts/services.sh env)" &&

.PHONY: help test test-unit test-e2e bench bench-all build demo demo-down lint fuzz services-up services-down services-status

help: ## show this help
	@echo 'usage: make TARGET'
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

test: ## start the services, then run every test: unit and integration (-race), then end to end
	$(MAKE) --no-print-directory test-unit
	$(MAKE) --no-print-directory test-e2e

test-unit: services-up ## unit and integration tests with the race detector, against the real services
	$(WITH_ENV) $(GO) test -race -count=1 -timeout 30m $(PKGS)

test-e2e: services-up ## the whole cutover story with faults (SIGKILLs, restarts, an InfluxDB outage), exact counts
	@mkdir -p .data
	$(WITH_ENV) st=0; $(GO) test -race -count=1 -tags e2e -timeout 20m -v ./e2e/ > .data/e2e.log 2>&1 || st=$$?; \
	grep -E '^(=== RUN|--- |PASS|FAIL|ok |e2e:)|^ +--- FAIL|panic:' .data/e2e.log || true; \
	if [ $$st -ne 0 ]; then echo "--- e2e failed; why, from .data/e2e.log:"; scripts/testfailures .data/e2e.log; \
	  echo "--- last lines of .data/e2e.log:"; tail -n 60 .data/e2e.log; fi; exit $$st

bench: services-up ## one table: codec, producer, consumer, backfill, alert, each next to its baseline in the same run
	$(WITH_ENV) $(GO) run ./scripts/benchtable

bench-all: services-up ## every benchmark, raw go test output (BENCH_PKGS, BENCHTIME)
	$(WITH_ENV) $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(BENCH_PKGS)

FUZZTIME ?= 30s
FUZZ_TARGETS = ./shared/telemetry:FuzzDecode ./shared/telemetry:FuzzDecodeJSON ./backfill/internal/spill:FuzzDecodeRecord \
	./producer/internal/ingest:FuzzIngest ./consumer/internal/dlq:FuzzDeadLetter ./query/internal/api:FuzzRound6

fuzz: ## run every fuzz target for FUZZTIME each (default 30s); failures land in the package's testdata/fuzz
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

build: ## build the binaries into bin/
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./,$(BINARIES))

demo: ## start the services, build, and run the cutover demo (scripts/demo.sh)
	scripts/demo.sh

demo-down: ## stop the demo's consumers and private InfluxDB (if any), then the services
	scripts/demo.sh down
	$(MAKE) --no-print-directory services-down

lint: ## gofmt and go vet
	@files=$$(find . -name '*.go' -not -path './.data/*' -not -path './bin/*' | xargs gofmt -l); \
	if [[ -n $$files ]]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) vet -tags e2e ./e2e/

services-up: ## install (first time), start and wait for RabbitMQ, PostgreSQL, InfluxDB, MinIO
	scripts/services.sh up

services-down: ## stop the InfluxDB and MinIO that scripts/services.sh started
	scripts/services.sh down

services-status: ## one line per service, healthy or not
	scripts/services.sh status

.PHONY: fleetbench
FLEETBENCH_FLAGS ?= -units 1000 -days 30 -cadence 10m
fleetbench: services-up ## time the fleet dashboard raw vs downsampled on a month of data (FLEETBENCH_FLAGS)
	$(WITH_ENV) $(GO) run ./scripts/fleetbench $(FLEETBENCH_FLAGS)
