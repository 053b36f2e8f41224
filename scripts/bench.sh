#!/usr/bin/env bash
# Runs imgfs's benchmarks (scripts/bench) against curl, skopeo and ctr on a
# local registry and prints the ratios; results also go to bench/results.json.
# Arguments go to the bench program, e.g. scripts/bench.sh -runs 3 -only 1,3.
# Needs root and the tools scripts/setup.sh installs (IMGFS_BENCH=1 adds containerd).
set -euo pipefail
cd "$(dirname "$0")/.."
go build -o bin/imgfs ./cmd/imgfs
exec go run ./scripts/bench "$@"
