#!/usr/bin/env bash
# Build a stand-in for `python:3.11-slim-bookworm` from Debian packages alone, and
# import it into podman/buildah's local store under that exact name, so that the
# project's Dockerfile builds with `--pull=never` on a machine that can reach the
# Debian mirror and PyPI but no container registry.
#
# It is NOT the official image: Python is Debian bookworm's python3.11 (3.11.2)
# instead of a source build under /usr/local. To look like the official image,
# /usr/local is made a virtualenv over it, so `python`, `python3` and `pip` are on
# PATH at /usr/local/bin, pip installs into /usr/local without the
# EXTERNALLY-MANAGED refusal, and `python -m venv` works.
#
# Needs root, debootstrap and podman (apt-get install -y debootstrap podman buildah).
#
# Usage:  sudo docker/build-local-base.sh
# Env:    DEBIAN_MIRROR (default http://deb.debian.org/debian)
#         BASE_TAG      (default docker.io/library/python:3.11-slim-bookworm)
#         WORKDIR       (default /tmp/unionbot-base)
#         PODMAN_OPTS   extra global options for podman, e.g. "--storage-driver vfs"
set -euo pipefail

MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
TAG="${BASE_TAG:-docker.io/library/python:3.11-slim-bookworm}"
WORKDIR="${WORKDIR:-/tmp/unionbot-base}"
ROOTFS="$WORKDIR/rootfs"
TARBALL="$WORKDIR/rootfs.tar"
# shellcheck disable=SC2206
PODMAN=(podman ${PODMAN_OPTS:-})

if [[ $(id -u) -ne 0 ]]; then
    echo "build-local-base.sh: run as root (debootstrap needs it)" >&2
    exit 1
fi
for tool in debootstrap podman; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y debootstrap podman buildah" >&2; exit 1; }
done

rm -rf "$ROOTFS" "$TARBALL"
mkdir -p "$ROOTFS"

echo ">> debootstrap bookworm (minbase) from $MIRROR"
debootstrap --variant=minbase --include=ca-certificates,netbase bookworm "$ROOTFS" "$MIRROR"

echo ">> apt-get install python3.11 + venv inside the root filesystem"
# debootstrap's own --include resolver misses python3.11-venv's dependencies; apt does not.
mount -t proc proc "$ROOTFS/proc"
trap 'umount "$ROOTFS/proc" 2>/dev/null || true' EXIT
chroot "$ROOTFS" apt-get update
chroot "$ROOTFS" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends python3.11 python3.11-venv tzdata

echo ">> make /usr/local a python 3.11 environment with pip (like the official image)"
# /usr/local becomes a venv over /usr/bin/python3.11: bin/python, bin/python3, bin/pip
chroot "$ROOTFS" /usr/bin/python3.11 -m venv /usr/local
chroot "$ROOTFS" /usr/local/bin/python -m pip --version
ln -sf python3 "$ROOTFS/usr/local/bin/python"

echo ">> trim"
chroot "$ROOTFS" apt-get clean
umount "$ROOTFS/proc"
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin \
       "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
       "$ROOTFS"/var/log/*.log "$ROOTFS"/tmp/* 2>/dev/null || true
# the mirror that the image's apt uses later on
echo "deb $MIRROR bookworm main" > "$ROOTFS/etc/apt/sources.list"
# apt settings of Debian's official container images (debian:bookworm-slim): no package
# caches or translations left in layers after `apt-get update/install`
cat > "$ROOTFS/etc/apt/apt.conf.d/docker-clean" <<'APT'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
APT
echo 'Acquire::Languages "none";' > "$ROOTFS/etc/apt/apt.conf.d/docker-no-languages"
echo 'Acquire::GzipIndexes "true";' > "$ROOTFS/etc/apt/apt.conf.d/docker-gzip-indexes"
echo 'APT::AutoRemove::SuggestsImportant "false";' > "$ROOTFS/etc/apt/apt.conf.d/docker-autoremove-suggests"

echo ">> tar and import as $TAG"
tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL" .
PYVER=$(chroot "$ROOTFS" /usr/local/bin/python -c 'import platform; print(platform.python_version())')
"${PODMAN[@]}" import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PYTHON_VERSION=$PYVER" \
    --change 'CMD ["python3"]' \
    --message "local stand-in for python:3.11-slim-bookworm (debootstrap bookworm + Debian python $PYVER)" \
    "$TARBALL" "$TAG"

"${PODMAN[@]}" run --rm --network none "$TAG" sh -c 'python --version && pip --version && python -m venv /tmp/v && echo venv-ok'
"${PODMAN[@]}" images "$TAG"
echo ">> done: $TAG (rootfs kept in $ROOTFS; rm -rf $WORKDIR to reclaim space)"
