# tollgate — see README.md. `make ci` is what .ci/run runs.

GO          ?= go
# Where testdeps and tools are built: outside the repository, so CI on the
# same machine reuses them.
TESTDEPS    ?= $(or $(TOLLGATE_TESTDEPS),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tollgate/testdeps)
export TOLLGATE_TESTDEPS := $(TESTDEPS)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TESTDEPS)/staticcheck-$(STATICCHECK_VERSION)
TEST_TIMEOUT ?= 30m

.PHONY: build test testdeps lint bench ci

build:
	$(GO) build ./...

test:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

testdeps:
	bash scripts/testdeps.sh

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
