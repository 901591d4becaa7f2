# The project's commands. `make` alone prints this help.
# Everything needs only Go and a Debian machine: `make test` and `make demo`
# install and start the service stack themselves (scripts/services.sh up).

SHELL       := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

GO         ?= go
PKGS       ?= ./...
# Packages with benchmarks; grows as benchmarks land next to their baselines.
BENCH_PKGS ?= ./shared/... ./consumer/internal/pipeline ./backfill/...
BENCHTIME  ?= 1s
BINARIES   := producer consumer backfill migrate
VERSION    ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS    := -X github.com/flexipack/cutover/shared/cliapp.Version=$(VERSION)

# Runs a command with the service addresses the binaries and tests read.
WITH_ENV = eval "$$(scripts/services.sh env)" &&

.PHONY: help test bench build demo demo-down lint services-up services-down services-status

help: ## show this help
	@echo 'usage: make TARGET'
	@echo
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# TODO(lead): once e2e/ exists, add a test-e2e target
# (go test -race -count=1 -tags e2e -timeout 30m ./e2e/...) and run it from `test`.
test: services-up ## start the services, then run every test with the race detector
	$(WITH_ENV) $(GO) test -race -count=1 -timeout 30m $(PKGS)

bench: services-up ## start the services, then run the benchmarks (BENCH_PKGS, BENCHTIME)
	$(WITH_ENV) $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(BENCH_PKGS)

build: ## build the four binaries into bin/
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ $(addprefix ./,$(BINARIES))

demo: ## start the services, build, and run the cutover demo (scripts/demo.sh)
	scripts/demo.sh

demo-down: services-down ## stop the services the demo started (same as services-down)

lint: ## gofmt and go vet
	@files=$$(find . -name '*.go' -not -path './.data/*' -not -path './bin/*' | xargs gofmt -l); \
	if [[ -n $$files ]]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi
	$(GO) vet $(PKGS)

services-up: ## install (first time), start and wait for RabbitMQ, PostgreSQL, InfluxDB, MinIO
	scripts/services.sh up

services-down: ## stop the InfluxDB and MinIO that scripts/services.sh started
	scripts/services.sh down

services-status: ## one line per service, healthy or not
	scripts/services.sh status
