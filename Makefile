# tollgate — see README.md. `make ci` is what .ci/run runs.

GO          ?= go
# Where testdeps and tools are built: outside the repository, so CI on the
# same machine reuses them.
TESTDEPS    ?= $(or $(TOLLGATE_TESTDEPS),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tollgate/testdeps)
export TOLLGATE_TESTDEPS := $(TESTDEPS)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TESTDEPS)/staticcheck-$(STATICCHECK_VERSION)
TEST_TIMEOUT ?= 30m

# The cluster demo's store: etcd or consul.
KV ?= etcd

.PHONY: build test testdeps lint bench ci run demo-cluster conformance

# bin/tollgate, stamped with the version (git describe) and the commit
# that "tollgate version" prints.
BUILD_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
BUILD_COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)$(shell git diff --quiet HEAD 2>/dev/null || echo -dirty)
BUILD_LDFLAGS := -X main.version=$(BUILD_VERSION) -X main.commit=$(BUILD_COMMIT)

build:
	$(GO) build ./...
	$(GO) build -ldflags "$(BUILD_LDFLAGS)" -o bin/tollgate ./cmd/tollgate

test: testdeps
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

testdeps:
	bash scripts/testdeps.sh

# One replica on the embedded store, a local Pebble CA and a demo backend:
# obtains a certificate, proves HTTPS and prints curl commands; Ctrl-C stops.
run:
	bash scripts/testdeps.sh pebble
	$(GO) run ./demo $(DEMO_FLAGS)

# Three replicas on $(KV) behind round-robin load balancers, likewise.
demo-cluster:
	bash scripts/testdeps.sh pebble $(KV)
	$(GO) run ./demo --cluster --kv $(KV) $(DEMO_FLAGS)

$(STATICCHECK):
	mkdir -p $(TESTDEPS)/.staticcheck
	GOBIN=$(TESTDEPS)/.staticcheck $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TESTDEPS)/.staticcheck/staticcheck $@

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

ci: testdeps lint test

# The Gateway API conformance suite (GATEWAY-HTTP profile, core features)
# against a tollgate built from this tree, in a network namespace of its
# own (docs/gateway-api-conformance.md). Not part of ci: it takes minutes
# and fails as long as a core test fails. The suite's
# report goes to conformance/report.yaml, the whole log to
# conformance/conformance.log, tollgate's log to conformance/tollgate.log.
CONFORMANCE_FLAGS ?=
conformance:
	bash scripts/testdeps.sh kube
	cd conformance && TOLLGATE_CONFORMANCE_VERSION=$(BUILD_VERSION) \
		TOLLGATE_CONFORMANCE_REPORT=$(CURDIR)/conformance/report.yaml \
		TOLLGATE_CONFORMANCE_TOLLGATE_LOG=$(CURDIR)/conformance/tollgate.log \
		bash -o pipefail -c '$(GO) test -count=1 -v -timeout 60m $(CONFORMANCE_FLAGS) . 2>&1 | tee conformance.log'
