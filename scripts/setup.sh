#!/usr/bin/env bash
# Installs what imgfs's demo, tests and benchmarks need from Debian, when
# it is missing. Safe to run again: it only installs what is absent.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have fusermount3 || need+=(fuse3)
have docker-registry || need+=(docker-registry)
have skopeo || need+=(skopeo)
have umoci || need+=(umoci)
have jq || need+=(jq)
have zstd || need+=(zstd)
have curl || need+=(curl)
have nginx || need+=(nginx-light)    # the range-caching mirror of the mirror tests
have htpasswd || need+=(apache2-utils) # bcrypt htpasswd for the basic-auth registry
# cgo and a static zlib for the SOCI interop tests (internal/sociinterop):
# SOCI's zTOC code is C, linked against libz.a.
have gcc || need+=(gcc)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need+=(zlib1g-dev)
if [ "${IMGFS_BENCH:-}" = 1 ]; then
  have containerd || need+=(containerd)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing ${need[*]}; run as root (or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! have go; then
  echo "setup: Go is not installed (need Go 1.26 or later on PATH)" >&2
  exit 1
fi

# staticcheck for make lint, pinned to the release (2026.2.2) checked here
# with Go 1.26. It goes where make lint looks: GOBIN, else GOPATH/bin.
STATICCHECK_VERSION=v0.8.2
gobin=$(go env GOBIN)
gobin=${gobin:-$(go env GOPATH)/bin}
if ! have staticcheck && [ ! -x "$gobin/staticcheck" ]; then
  echo "setup: installing staticcheck $STATICCHECK_VERSION into $gobin"
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

if [ ! -e /dev/fuse ]; then
  modprobe fuse 2>/dev/null || true
fi
if [ ! -e /dev/fuse ]; then
  echo "setup: /dev/fuse is missing: load the fuse module (modprobe fuse) or run the container with --device /dev/fuse" >&2
  exit 1
fi
