# ATG for Go. `make help` lists the targets.
SHELL := /usr/bin/env bash
GO ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
STATICCHECK_VERSION ?= v0.8.2
FUZZTIME ?= 60s
FUZZFLAGS ?=
BENCHTIME ?= 1s

.PHONY: help test run bench lint fuzz apitest neo4j-start neo4j-stop build

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

test: ## the whole suite with the race detector, against real Neo4j (started if NEO4J_URI is unset)
	scripts/with-neo4j.sh $(GO) test -race -count=1 -timeout 12m ./...

run: ## a local Neo4j if none is configured, then atg-server in dev mode
	$(GO) build -o bin/atg-server ./cmd/atg-server
	scripts/with-neo4j.sh bin/atg-server serve

bench: ## the benchmarks, printing ratios against their baselines
	scripts/with-neo4j.sh $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -timeout 30m ./...

apitest: ## schemathesis against /openapi.json of a running server (PyPI; >= 1,000 requests)
	scripts/with-neo4j.sh scripts/apitest.sh

lint: ## gofmt, go vet and staticcheck
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@test -x "$(STATICCHECK)" || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(STATICCHECK) ./...

fuzz: ## run every fuzz target for FUZZTIME each (default 60s), then keep the corpus in testdata/fuzz
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $(FUZZFLAGS) $$pkg; \
	  done; done
	scripts/keep-fuzz-corpus.sh

build: ## build the commands (atg-server, atg, atg-load) into bin/
	$(GO) build -o bin/ ./cmd/...

neo4j-start: ## start the local Neo4j (scripts/neo4j.sh)
	scripts/neo4j.sh start

neo4j-stop: ## stop the local Neo4j
	scripts/neo4j.sh stop
