#!/usr/bin/env bash
# The demo: start a throwaway local registry, build and push a sample image
# with umoci and skopeo, mount it with imgfs and look around. Everything it
# starts is stopped, and everything it writes is removed, on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
IMGFS=${IMGFS:-$PWD/bin/imgfs}
work=$(mktemp -d /tmp/imgfs-demo.XXXXXX)
mnt=$work/mnt
registry_pid=
cleanup() {
  if mountpoint -q "$mnt" 2>/dev/null; then "$IMGFS" unmount "$mnt" >/dev/null || true; fi
  if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
show() { step "$@"; "$@"; }

# A registry on the first free port from 5123.
for port in $(seq 5123 5143); do
  cat >"$work/registry.yml" <<YAML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $work/registry}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port, secret: demo-only}
YAML
  docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
  registry_pid=$!
  for _ in $(seq 50); do
    curl -fs "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break 2
    kill -0 "$registry_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$registry_pid" 2>/dev/null || true; wait "$registry_pid" 2>/dev/null || true; registry_pid=
done
[ -n "$registry_pid" ] || { echo "demo: could not start docker-registry; see $work/registry.log" >&2; exit 1; }
ref=127.0.0.1:$port/demo/hello:v1
echo "registry: http://127.0.0.1:$port (storage in $work/registry)"

# A sample image of two layers: a little text, then 64 MiB of data. The
# layers are made with tar (umoci insert writes tars without the end
# marker, which GNU tar then reports as truncated).
umoci init --layout "$work/oci" >/dev/null
umoci new --image "$work/oci:v1" >/dev/null
mkdir -p "$work/rootfs1/etc" "$work/rootfs2/data"
printf 'Hello from a lazily mounted image.\n' >"$work/rootfs1/etc/motd"
printf 'NAME="imgfs demo"\n' >"$work/rootfs1/etc/os-release"
head -c $((64 << 20)) /dev/urandom >"$work/rootfs2/data/big.bin"
for n in 1 2; do
  tar -cf "$work/layer$n.tar" -C "$work/rootfs$n" .
  umoci raw add-layer --image "$work/oci:v1" "$work/layer$n.tar" >/dev/null
done
umoci config --image "$work/oci:v1" --config.cmd /bin/sh >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$work/oci:v1" "docker://$ref"
echo "pushed $ref"

mkdir -p "$mnt"
show "$IMGFS" mount --background --cache-dir "$work/cache" "$ref" "$mnt"
show ls -l "$mnt" "$mnt/layers"
show jq . "$mnt/index.json"
show jq '.layers[] | {mediaType, size}' "$mnt/manifest.json"
step "jq .cache.fetched_bytes $mnt/.imgfs/stats.json   # layer bytes pulled so far"
jq .cache.fetched_bytes "$mnt/.imgfs/stats.json"
show tar -tzvf "$mnt/layers/0-"*.tar.gz
step "sha256sum $mnt/layers/1-*.tar.gz   # reads the 64 MiB layer through FUSE, fetching it lazily"
(cd "$mnt/layers" && sha256sum 1-*.tar.gz)
step "cat $mnt/rootfs/etc/os-release   # a file inside the image: rootfs/ is the merged root filesystem"
cat "$mnt/rootfs/etc/os-release"
show ls -l "$mnt/rootfs" "$mnt/rootfs/data"
show ls "$mnt/layers"   # each layer's own tree sits beside its blob
step "jq .cache $mnt/.imgfs/stats.json"
jq .cache "$mnt/.imgfs/stats.json"
show "$IMGFS" unmount "$mnt"
echo
echo "Done. The registry, mount and cache are cleaned up on exit."
