# imgfs: mount container images from a registry as lazy read-only filesystems.
#
#   make demo   set up, start a local registry, push an image, mount it, show it
#   make test   everything: unit, integration and end-to-end FUSE tests
#   make bench  benchmarks against curl, skopeo and ctr, as ratios

GO      ?= go
BIN     := bin/imgfs
PKGS    := ./...

.PHONY: all build test unit lint demo bench setup clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/imgfs

setup:
	scripts/setup.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# Unit tests of the pure logic only: no registry, no FUSE.
unit:
	$(GO) test -short ./cache/ ./fetch/ ./fusefs/

test: setup lint
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

demo: setup build
	scripts/demo.sh

bench: build
	IMGFS_BENCH=1 scripts/setup.sh
	scripts/bench.sh

clean:
	rm -rf bin bench
