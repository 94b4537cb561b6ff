#!/usr/bin/env bash
# Idempotent: make the base image the Dockerfile's runtime-base stage starts
# FROM (debian:bookworm-slim) on a machine that reaches no image registry,
# from Debian's own packages with debootstrap. Skips when it exists.
#   scripts/image-base.sh            # localhost/debian:bookworm-slim
# The mirror is the one apt already uses (DEBIAN_MIRROR overrides it).
# Needs root (debootstrap), podman and debootstrap (scripts/install-prereqs.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

image=${BASE_IMAGE:-localhost/debian:bookworm-slim}
export CONTAINERS_CONF=${CONTAINERS_CONF:-$PWD/deploy/podman/containers.conf}

sudo_() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

command -v podman >/dev/null || { echo "podman is not installed: run scripts/install-prereqs.sh" >&2; exit 1; }
podman image exists "$image" && exit 0

# Concurrent test binaries (or CI jobs) make it once.
exec 9>"${TMPDIR:-/tmp}/flightctl-image-base.lock"
flock 9
podman image exists "$image" && exit 0

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources)
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror=$(awk '$1 == "deb" && $2 !~ /^\[/ && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list)
fi
mirror=${mirror:-http://deb.debian.org/debian}

debootstrap=$(command -v debootstrap || echo /usr/sbin/debootstrap)
[ -x "$debootstrap" ] || { echo "debootstrap is not installed: run scripts/install-prereqs.sh" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/flightctl-rootfs.XXXXXX")
trap 'sudo_ rm -rf "$work"' EXIT

fail() { tail -n 30 "$work/debootstrap.log" >&2; exit 1; }
echo "image-base: debootstrap bookworm from $mirror"
rootfs=$work/rootfs
sudo_ "$debootstrap" --variant=minbase --foreign bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || fail
# Before the packages are configured, dpkg settings as in Docker's official
# Debian images: no fsync per file (much faster here, and in the
# Dockerfile's apt step), no docs, man pages or translations.
sudo_ mkdir -p "$rootfs/etc/dpkg/dpkg.cfg.d"
echo force-unsafe-io | sudo_ tee "$rootfs/etc/dpkg/dpkg.cfg.d/unsafe-io" >/dev/null
sudo_ tee "$rootfs/etc/dpkg/dpkg.cfg.d/slim" >/dev/null <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
CFG
sudo_ chroot "$rootfs" /debootstrap/debootstrap --second-stage >>"$work/debootstrap.log" 2>&1 || fail
# Slim like the official image: no downloaded packages or package lists.
sudo_ rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
sudo_ tar -C "$rootfs" -c . | podman import -q --change 'CMD ["bash"]' - "$image" >/dev/null
echo "image-base: $image"
