#!/usr/bin/env bash
# Builds the agent image without a Docker engine, smoke-tests it, and saves it as an archive that
# `docker load`, `kind load image-archive` and `ctr images import` accept.
#
#   scripts/build-image.sh [--binary PATH] [--out FILE] [--name NAME] [--max-mb N] [--no-smoke]
#
# - The binary: --binary, else the release build in the cargo target directory (built with
#   `cargo build --release --locked -p hc-cli` when missing), so CI builds it once for every step.
# - The image: the Dockerfile's `runtime` stage (FROM scratch) built by buildah, its `build` stage
#   replaced by the root filesystem scripts/image-rootfs.sh assembles from that binary: the same
#   layout `docker build` produces. Buildah keeps its storage in a temporary directory (vfs
#   driver, chroot isolation: works as root with no daemon), removed at the end.
# - The smoke test: `hc-cli --version` inside the image, then `hc-cli probe` inside the image
#   (as UID 0 and as the controller's UID 65534) against dnsmasq on 127.0.0.1: chroot isolation
#   keeps the host's network namespace, and only loopback is queried.
# - The archive (--out, default <target>/image/hc-cli-<version>.oci.tar): an OCI image layout with
#   a Docker `manifest.json` beside it, as `docker save` writes since Docker 25, named --name
#   (default ghcr.io/coredns-healthcheck/hc-cli:<version>). Read back through both formats
#   before the script says it is done. --max-mb fails when the archive is larger.
#
# Needs: buildah, dnsmasq (smoke test), python3, ldd and CA certificates (scripts/setup.sh
# installs them). Every step is bounded in time (STEP_TIMEOUT, 300 s).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "build-image: $*" >&2; exit 1; }
say() { echo "build-image: $*"; }

binary=""
out=""
name=""
max_mb=""
smoke=1
while (($#)); do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --max-mb) max_mb=$2; shift 2 ;;
    --no-smoke) smoke=0; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

STEP_TIMEOUT=${STEP_TIMEOUT:-300}
for tool in buildah python3 timeout; do
  command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh (apt-get install buildah)"
done
[ "$(id -u)" = 0 ] || die "buildah's vfs storage and chroot isolation need root here"

target_dir=${CARGO_TARGET_DIR:-target}
if [ -z "$binary" ]; then
  binary=$target_dir/release/hc-cli
  if [ ! -x "$binary" ]; then
    say "no release build at $binary: building it (a few minutes the first time)"
    cargo build --release --locked -p hc-cli
  fi
fi
[ -x "$binary" ] || die "$binary is not an executable"
version=$("$binary" --version | awk '{ print $2 }')
[ -n "$version" ] || die "$binary --version printed no version"
name=${name:-ghcr.io/coredns-healthcheck/hc-cli:$version}
out=${out:-$target_dir/image/hc-cli-$version.oci.tar}
mkdir -p "$(dirname "$out")"

work=$(mktemp -d "${TMPDIR:-/tmp}/hc-image.XXXXXX")
dnsmasq_pid=""
container=""
cleanup() {
  [ -n "$dnsmasq_pid" ] && kill "$dnsmasq_pid" 2>/dev/null
  [ -n "$container" ] && bah rm "$container" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
bah() {
  timeout "$STEP_TIMEOUT" buildah --root "$work/storage" --runroot "$work/run" \
    --storage-driver vfs "$@"
}

scripts/image-rootfs.sh "$binary" "$work/context/out/rootfs"
rootfs_bytes=$(du -sb "$work/context/out/rootfs" | awk '{ print $1 }')
local_name=localhost/hc-cli-build:$$
mkdir "$work/empty"
bah bud --quiet --isolation chroot --build-context build="$work/context" --target runtime \
  --omit-history -f "$PWD/Dockerfile" -t "$local_name" "$work/empty" >/dev/null

if ((smoke)); then
  command -v dnsmasq >/dev/null || die "dnsmasq is missing (the smoke test's DNS server): run scripts/setup.sh"
  container=$(bah from --name "hc-image-smoke-$$" "$local_name")
  run() { bah run --isolation chroot "$@"; }
  say "smoke: hc-cli --version inside the image"
  run "$container" -- /usr/local/bin/hc-cli --version
  # A DNS server on loopback that forwards nothing and reads no file of the machine's.
  for _ in 1 2 3 4 5; do
    port=$((20000 + RANDOM % 40000))
    dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts --no-poll \
      --bind-interfaces --listen-address=127.0.0.1 --port="$port" --user=root --pid-file= \
      --address=/kubernetes.default.svc.cluster.local/10.96.0.1 2>"$work/dnsmasq.log" &
    dnsmasq_pid=$!
    sleep 0.3
    kill -0 "$dnsmasq_pid" 2>/dev/null && break
    dnsmasq_pid=""
  done
  [ -n "$dnsmasq_pid" ] || die "dnsmasq did not start on 127.0.0.1: $(cat "$work/dnsmasq.log")"
  say "smoke: hc-cli probe inside the image against dnsmasq on 127.0.0.1:$port"
  run "$container" -- /usr/local/bin/hc-cli probe "@127.0.0.1:$port" \
    kubernetes.default.svc.cluster.local A --both --expect 10.96.0.1 --attempts 3
  say "smoke: the same as UID 65534 (the controller's), JSON"
  run --user 65534:65534 "$container" -- /usr/local/bin/hc-cli probe "@127.0.0.1:$port" \
    --expect 10.96.0.1 --attempts 3 --json | python3 -c '
import json, sys
r = json.load(sys.stdin)
assert r[0]["healthy"] and r[0]["answers"] == ["10.96.0.1"], r
print("build-image: smoke: healthy, answers", r[0]["answers"])'
  kill "$dnsmasq_pid"
  dnsmasq_pid=""
fi

rm -f "$out"
bah push --quiet "$local_name" "oci-archive:$out:$name"
# Docker's own index beside the OCI one (what `docker save` writes since Docker 25), so that
# Docker engines that read only `manifest.json` load it too.
python3 - "$out" "$name" <<'PY'
import io, json, sys, tarfile
path, name = sys.argv[1], sys.argv[2]
with tarfile.open(path) as t:
    members = {m.name: t.extractfile(m).read() if m.isfile() else None for m in t.getmembers()}
    infos = t.getmembers()
index = json.loads(members["index.json"])
manifest = json.loads(members["blobs/sha256/" + index["manifests"][0]["digest"].split(":")[1]])
blob = lambda d: "blobs/sha256/" + d["digest"].split(":")[1]
docker = [{"Config": blob(manifest["config"]), "RepoTags": [name],
           "Layers": [blob(layer) for layer in manifest["layers"]]}]
data = json.dumps(docker).encode()
with tarfile.open(path, "w") as t:
    for info in infos:
        t.addfile(info, io.BytesIO(members[info.name]) if info.isfile() else None)
    info = tarfile.TarInfo("manifest.json")
    info.size, info.mode = len(data), 0o644
    t.addfile(info, io.BytesIO(data))
PY
for transport in oci-archive docker-archive; do
  bah pull --quiet "$transport:$out" >/dev/null || die "$out does not read back as $transport"
done
say "read back as oci-archive and docker-archive: ok"

archive_bytes=$(stat -c %s "$out")
mb() { python3 -c "print(f'{$1 / 1e6:.1f}')"; }
say "image $name: $(mb "$archive_bytes") MB archive (compressed), $(mb "$rootfs_bytes") MB unpacked"
say "saved $out (docker load -i $out; kind load image-archive $out)"
if [ -n "$max_mb" ] && ((archive_bytes > max_mb * 1000000)); then
  die "the archive is $(mb "$archive_bytes") MB, over --max-mb $max_mb"
fi
