#!/usr/bin/env bash
# Build the stylize-bot image where no image registry is reachable (only Debian's and PyPI's package
# servers): the base image is made here with debootstrap (Debian with Python from Debian's packages) and
# `docker import`, then the Dockerfile is built on it with BuildKit.
#
#   scripts/build-image-offline.sh [TAG]      (default tag stylize-bot:local, the one compose.yaml uses)
#
# Environment:
#   DEBIAN_RELEASE   bookworm (Python 3.11, the version the Dockerfile pins)
#   DEBIAN_MIRROR    http://deb.debian.org/debian
#   BASE_TAG         stylize-base:<release>; an existing image of that tag is reused
#   WORK_DIR         where the root file system is made (default: a temporary folder, removed after)
#   DOCKER_HOST      the daemon, as usual
# Package index settings of this machine (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, UV_INDEX_URL,
# UV_DEFAULT_INDEX, UV_EXTRA_INDEX_URL) and its CA bundle (SSL_CERT_FILE, for a TLS-inspecting proxy)
# are passed to the build's download steps only — as build arguments of the builder stage and a BuildKit
# secret — and are not stored in the image.
#
# Needs: root (debootstrap), debootstrap, a Docker daemon, and a docker CLI with BuildKit (Debian's
# docker.io 20.10 does it with DOCKER_BUILDKIT=1; a newer CLI needs the buildx plugin).
set -euo pipefail
cd "$(dirname "$0")/.."

tag=${1:-stylize-bot:local}
release=${DEBIAN_RELEASE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
base=${BASE_TAG:-stylize-base:$release}
docker=${DOCKER:-docker}

if ! "$docker" image inspect "$base" >/dev/null 2>&1; then
  root=${WORK_DIR:-$(mktemp -d)}
  trap 'rm -rf "$root"' EXIT
  echo "== debootstrap $release into $root"
  # What the official python image gives the Dockerfile: `python` and `pip` on PATH, the CA certificates.
  debootstrap --variant=minbase --include=python3,python3-pip,python-is-python3,ca-certificates \
    "$release" "$root/rootfs" "$mirror"
  # Pip may install into this Python (the official image's does; uv is the only thing installed this way).
  rm -f "$root"/rootfs/usr/lib/python3*/EXTERNALLY-MANAGED
  rm -rf "$root"/rootfs/var/lib/apt/lists/* "$root"/rootfs/var/cache/apt/*.bin \
    "$root"/rootfs/var/cache/apt/archives/*.deb "$root"/rootfs/usr/share/doc/* "$root"/rootfs/usr/share/man/*
  echo "== docker import $base"
  tar -C "$root/rootfs" -c . | "$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' - "$base"
  rm -rf "$root"
  trap - EXIT
fi

build_args=(--build-arg "PYTHON_IMAGE=$base")
for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL UV_INDEX_URL UV_DEFAULT_INDEX UV_EXTRA_INDEX_URL; do
  # Only index URLs a container can reach (not file:// folders of this machine).
  value=${!name-}
  if [[ -n $value && $value != file:* ]]; then build_args+=(--build-arg "$name=$value"); fi
done
secret=()
ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
if [[ -f $ca ]]; then secret=(--secret "id=ca,src=$ca"); fi

echo "== docker build $tag (base $base)"
start=$(date +%s)
DOCKER_BUILDKIT=1 "$docker" build --network host "${build_args[@]}" "${secret[@]}" \
  --progress plain -t "$tag" .
echo "== built $tag in $(($(date +%s) - start)) s; $("$docker" image inspect -f '{{.Size}}' "$tag" \
  | awk '{printf "%.2f GB", $1 / 1e9}')"
