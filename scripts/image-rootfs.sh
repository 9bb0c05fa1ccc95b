#!/usr/bin/env bash
# The agent image's root filesystem, assembled from a built hc-cli: the binary (stripped), exactly
# the shared libraries it loads and their loader (as ldd lists them), the CA certificates, and
# passwd/group entries for the UIDs the manifests use (0 for the agent, 65534 for the controller,
# 65532 for probe pods). Nothing else: no shell, no package manager.
#
#   scripts/image-rootfs.sh target/release/hc-cli /tmp/rootfs
#
# Both the Dockerfile and scripts/build-image.sh build the image from this directory, so the two
# produce the same layout.
set -euo pipefail

die() { echo "image-rootfs: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: $0 BINARY OUT_DIR"
bin=$1
out=$2
[ -x "$bin" ] || die "$bin is not an executable (build it: cargo build --release --locked -p hc-cli)"
command -v ldd >/dev/null || die "ldd is missing (apt-get install libc-bin)"
certs=/etc/ssl/certs/ca-certificates.crt
[ -r "$certs" ] || die "$certs is missing (apt-get install ca-certificates)"

rm -rf "$out"
mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs"
install -m 0755 "$bin" "$out/usr/local/bin/hc-cli"
if command -v strip >/dev/null; then
  strip "$out/usr/local/bin/hc-cli"
fi

# `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)` and `/lib64/ld-linux-x86-64.so.2 (0x...)`:
# each copied under the path the binary asks for, symlinks resolved.
deps=$(ldd "$bin" 2>&1) || true
if grep -q "not found" <<<"$deps"; then
  die "$bin needs a library that is not installed: $deps"
fi
while read -r lib; do
  [ -n "$lib" ] || continue
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
done < <(awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$deps")

install -m 0644 "$certs" "$out/etc/ssl/certs/ca-certificates.crt"
cat >"$out/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
PASSWD
cat >"$out/etc/group" <<'GROUP'
root:x:0:
nonroot:x:65532:
nogroup:x:65534:
GROUP
# Name lookups (a kubeconfig naming its API server by name) from /etc/hosts, then DNS.
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$out/etc/nsswitch.conf"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf"
