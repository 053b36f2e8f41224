# imgfs: mount container images from a registry as lazy read-only filesystems.
#
#   make demo   set up, start a local registry, push an image, mount it, show it
#   make test   everything: unit, integration and end-to-end FUSE tests
#   make bench  benchmarks against curl, skopeo and ctr, as ratios
#   make lint   gofmt, go vet and staticcheck
#   make fuzz   each fuzz target for FUZZTIME (plain go test runs only the seed corpora)

GO      ?= go
BIN     := bin/imgfs
PKGS    := ./...

# staticcheck on PATH, else where scripts/setup.sh installs it: GOBIN, or
# GOPATH/bin.
STATICCHECK ?= $(or $(shell command -v staticcheck 2>/dev/null),$(or $(shell $(GO) env GOBIN),$(shell $(GO) env GOPATH)/bin)/staticcheck)

# Fuzz targets as package:target. Each runs for FUZZTIME.
FUZZTIME    ?= 30s
FUZZTARGETS := ./fetch/:FuzzParseReference ./fetch/:FuzzChildren ./internal/byterange/:FuzzSet \
               ./internal/layer/:FuzzNormalizeName ./internal/layer/:FuzzUnmarshalIndex ./internal/layer/inflate/:FuzzInflate \
               ./internal/layer/ztoc/:FuzzParse ./internal/layer/ztoc/:FuzzLayer

.PHONY: all build test unit lint fuzz demo bench setup clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/imgfs

setup:
	scripts/setup.sh

lint:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@test -x "$(STATICCHECK)" || { echo "staticcheck not found at $(STATICCHECK): run scripts/setup.sh"; exit 1; }
	$(STATICCHECK) $(PKGS)

fuzz:
	@set -e; for t in $(FUZZTARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		$(GO) test -list '^'$$name'$$' $$pkg | grep -qx $$name || { echo "fuzz: no $$name in $$pkg"; exit 1; }; \
		echo "fuzz $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz '^'$$name'$$' -fuzztime $(FUZZTIME) $$pkg; \
	done

# Unit tests of the pure logic only: no registry, no FUSE.
unit:
	$(GO) test -short ./cache/ ./fetch/ ./fusefs/

test: setup lint build
	$(GO) test -race -count=1 -timeout 20m $(PKGS)
	@# SOCI interop: a module of its own, so that SOCI (cgo, zlib, containerd)
	@# and go-containerregistry stay out of go.mod. Its end-to-end tests run
	@# the binary just built.
	cd internal/sociinterop && CGO_ENABLED=1 $(GO) vet ./... && CGO_ENABLED=1 $(STATICCHECK) ./... && \
		CGO_ENABLED=1 IMGFS_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 10m ./...
	@# The demo is what a new user runs first: it must keep working.
	@scripts/demo.sh >bin/demo.log 2>&1 || { cat bin/demo.log; echo "make test: scripts/demo.sh failed (log above)"; exit 1; }
	@echo "demo: ok"

demo: setup build
	scripts/demo.sh

bench: build
	IMGFS_BENCH=1 scripts/setup.sh
	scripts/bench.sh

clean:
	rm -rf bin bench
