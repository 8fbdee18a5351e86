#!/usr/bin/env bash
# `sam local` on this machine: a Docker daemon, the Lambda base image SAM builds its
# emulator image on, then the sam local checks (tests/sam_local.rs).
#   infra/sam-local.sh docker   # daemon + base image only; prints what it started
#   infra/sam-local.sh check    # the same, then the checks; stops what it started
# The base image is pulled when a registry answers. Where none does (this project's CI
# reaches package registries only), a stand-in is built from Debian's own packages and
# tagged with the name SAM looks up; it is cached by a hash of the recipe below.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.local
IMAGE=public.ecr.aws/lambda/provided:al2023-x86_64
BUILD_DIR=${SAM_BUILD_DIR:-.aws-sam/check-x86_64}
SUITE=bookworm
# What the `provided` runtime needs from its base: a glibc the bootstrap links against,
# CA certificates for TLS to AWS, and the folders Lambda mounts code and layers on.
PACKAGES=ca-certificates
DIRS="var/task var/runtime opt"
mkdir -p "$STATE"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() { # command, package
  command -v "$1" >/dev/null && return 0
  echo "installing $2 (apt)..."
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$2" >/dev/null 2>&1 ||
    { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$2" >/dev/null; }
}

started_dockerd=""
stop_dockerd() {
  [ -n "$started_dockerd" ] || return 0
  as_root kill "$started_dockerd" 2>/dev/null || true
  for _ in $(seq 1 200); do as_root kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.1; done
  rm -f "$STATE/dockerd.pid"
  echo "dockerd stopped (pid $started_dockerd)"
}

docker_up() {
  apt_install dockerd docker.io
  if docker info >/dev/null 2>&1; then return 0; fi
  echo "no Docker daemon answers: starting dockerd (log: $STATE/dockerd.log)"
  # Started directly (not through a shell function, whose subshell would take $! and
  # leave dockerd running when killed); sudo passes SIGTERM on to it.
  if [ "$(id -u)" = 0 ]; then
    dockerd >"$STATE/dockerd.log" 2>&1 &
  else
    sudo dockerd >"$STATE/dockerd.log" 2>&1 &
  fi
  started_dockerd=$!
  echo "$started_dockerd" >"$STATE/dockerd.pid"
  for _ in $(seq 1 300); do
    docker info >/dev/null 2>&1 && { echo "dockerd up (pid $started_dockerd)"; return 0; }
    sleep 0.1
  done
  echo "dockerd did not answer within 30 s; its log:" >&2
  tail -n 20 "$STATE/dockerd.log" >&2
  return 1
}

recipe_hash() {
  printf '%s\n' "$SUITE" "$PACKAGES" "$DIRS" "$(apt-config dump | grep -F 'Acquire::http::Proxy' || true)" |
    sha256sum | cut -c1-16
}

image_label() {
  docker image inspect -f '{{ index .Config.Labels "feedloop.standin" }}' "$IMAGE" 2>/dev/null
}

# The mirror apt already uses, so the stand-in comes from where the machine's packages do.
debian_mirror() {
  local m
  m=$(apt-get indextargets --format '$(REPO_URI)' 2>/dev/null | grep -m1 '/debian/$' || true)
  echo "${m:-http://deb.debian.org/debian/}"
}

build_standin() {
  local hash=$1 root="$STATE/standin-rootfs" t0=$SECONDS
  apt_install debootstrap debootstrap
  echo "building the stand-in base image $IMAGE from Debian $SUITE (debootstrap, recipe $hash)..."
  as_root rm -rf "$root"
  as_root debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$(debian_mirror)" \
    >"$STATE/debootstrap.log" 2>&1 || { tail -n 20 "$STATE/debootstrap.log" >&2; return 1; }
  for d in $DIRS; do as_root mkdir -p "$root/$d"; done
  as_root tar -C "$root" -c . | docker import --change "LABEL feedloop.standin=$hash" - "$IMAGE" >/dev/null
  as_root rm -rf "$root"
  echo "stand-in image built in $((SECONDS - t0)) s"
}

base_image() {
  local hash have
  hash=$(recipe_hash)
  have=$(image_label || true)
  if docker image inspect "$IMAGE" >/dev/null 2>&1 && [ -z "$have" ]; then
    echo "base image $IMAGE: the real one, already local"
    return 0
  fi
  if [ "$have" = "$hash" ]; then
    echo "base image $IMAGE: stand-in $hash, cached"
    return 0
  fi
  if timeout 60 docker pull "$IMAGE" >/dev/null 2>&1; then
    echo "base image $IMAGE: pulled"
    return 0
  fi
  echo "base image $IMAGE cannot be pulled (no registry reachable)"
  build_standin "$hash"
}

case "${1:-}" in
  docker)
    docker_up
    base_image
    [ -z "$started_dockerd" ] || echo "stop it with: kill $started_dockerd"
    ;;
  check)
    trap stop_dockerd EXIT
    docker_up
    base_image
    [ -f "$BUILD_DIR/template.yaml" ] || { echo "$BUILD_DIR/template.yaml missing: run make sam-check first" >&2; exit 1; }
    # --workspace: the features the suite built with, so nothing is rebuilt.
    FEEDLOOP_SAM_BUILD_DIR="$PWD/$BUILD_DIR" ${CARGO:-cargo} test --workspace --locked --test sam_local -- --ignored --nocapture --test-threads 1
    ;;
  *) echo "usage: $0 docker|check" >&2; exit 2 ;;
esac
