#!/usr/bin/env bash
# Local infrastructure for real multi-arch image builds on a Debian host without Docker Hub.
#
# The one place archlock's tests and CI set up their machine. Idempotent: every step first checks
# whether its result already exists, so a second run takes seconds. It:
#   1. installs Debian's docker.io, qemu-user-static, binfmt-support, debootstrap, docker-registry
#      (only those missing);
#   2. starts dockerd (--iptables=false) unless `docker info` already answers; never a second one;
#   3. enables binfmt for qemu-aarch64 so linux/arm64 runs by emulation;
#   4. builds base images archlock/debian-bookworm:{amd64,arm64} from debootstrap root filesystems
#      (FROM scratch + ADD rootfs.tar, built with --platform: `docker import` mislabels arm64);
#   5. starts a registry on 127.0.0.1:5000 (BuildKit and buildx read bases from a registry);
#   6. makes a uv image per arch from PyPI's `uv` wheels (the same layout as upstream's uv image:
#      /uv and /uvx in an empty image);
#   7. pushes bases and uv as manifest lists, and prints the references to build with
#      (ARCHLOCK_BASE_IMAGE: the multi-arch base list; ARCHLOCK_BASE_IMAGE_<ARCH>: the local
#      per-arch tags; ARCHLOCK_UV_IMAGE; ARCHLOCK_REGISTRY).
#
# Usage: scripts/local-infra.sh [--print-env]
#   --print-env   only print the KEY=VALUE lines (for `eval` or a dotenv file) at the end
# Settings (environment): ARCHLOCK_INFRA_DIR (state and logs), UV_VERSION, DEBIAN_SUITE,
#   DEBIAN_MIRROR (debootstrap's default when empty), REGISTRY_ADDR, PYTHON (for `pip download`).
set -euo pipefail

INFRA_DIR="${ARCHLOCK_INFRA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/archlock/infra}"
UV_VERSION="${UV_VERSION:-0.13.9}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-}"
REGISTRY_ADDR="${REGISTRY_ADDR:-127.0.0.1:5000}"
PYTHON="${PYTHON:-python3}"
DOCKER="/usr/bin/docker" # Debian's client: BuildKit built in (the buildx plugin may be missing)
ARCHES=(amd64 arm64)
BASE_NAME="archlock/debian-${DEBIAN_SUITE}"
UV_NAME="archlock/uv"
QUIET=0
[[ "${1:-}" == "--print-env" ]] && QUIET=1

log() { [[ $QUIET == 1 ]] || echo "local-infra: $*" >&2; }
die() { echo "local-infra: error: $*" >&2; exit 1; }

need_root() {
  [[ $(id -u) == 0 ]] || die "run as root (installs packages, starts dockerd, mounts binfmt_misc)"
}

install_packages() {
  local wanted=(docker.io qemu-user-static binfmt-support debootstrap docker-registry python3-pip)
  local missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} == 0 ]] && { log "packages present"; return; }
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_dockerd() {
  if "$DOCKER" info >/dev/null 2>&1; then log "dockerd already running"; return; fi
  log "starting dockerd (log: $INFRA_DIR/dockerd.log)"
  # --iptables=false: this host may not allow NAT rules; builds that need the network use
  # --network host. Never --bridge=none: it deletes docker0 under any other daemon.
  setsid nohup dockerd --iptables=false >>"$INFRA_DIR/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    "$DOCKER" info >/dev/null 2>&1 && { log "dockerd ready"; return; }
    sleep 0.5
  done
  die "dockerd did not answer in 30 s; see $INFRA_DIR/dockerd.log"
}

enable_binfmt() {
  local dir=/proc/sys/fs/binfmt_misc
  [[ -e $dir/register ]] || mount -t binfmt_misc binfmt_misc "$dir"
  if ! grep -q '^enabled' "$dir/qemu-aarch64" 2>/dev/null; then
    update-binfmts --enable qemu-aarch64
  fi
  grep -q '^flags:.*F' "$dir/qemu-aarch64" || die "qemu-aarch64 binfmt lacks the F flag"
  log "binfmt qemu-aarch64 enabled"
}

have_image() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

make_rootfs() { # arch -> $INFRA_DIR/base-<arch>/rootfs.tar (a finished rootfs is reused)
  local arch=$1
  local ctx="$INFRA_DIR/base-$arch"
  local root="$ctx/rootfs" done_mark="$ctx/rootfs.done"
  [[ -s $ctx/rootfs.tar ]] && return
  mkdir -p "$ctx"
  if [[ ! -e $done_mark ]]; then
    rm -rf "$root" && mkdir -p "$root"
    log "debootstrap $DEBIAN_SUITE $arch (amd64 ~70 s, arm64 by emulation ~330 s)"
    # shellcheck disable=SC2086  # an empty mirror means debootstrap's default
    if ! debootstrap --arch="$arch" --variant=minbase --include=python3,python3-venv,ca-certificates \
      "$DEBIAN_SUITE" "$root" $DEBIAN_MIRROR >"$ctx/debootstrap.log" 2>&1; then
      die "debootstrap $arch failed; see $ctx/debootstrap.log"
    fi
    touch "$done_mark"
  fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/tmp/*
  tar --numeric-owner -C "$root" -cf "$ctx/rootfs.tar.part" . || die "packing the $arch rootfs failed"
  mv "$ctx/rootfs.tar.part" "$ctx/rootfs.tar"
  rm -rf "$root" "$done_mark"
}

build_base() { # arch
  local arch=$1
  local ctx="$INFRA_DIR/base-$arch"
  have_image "$BASE_NAME:$arch" && { log "$BASE_NAME:$arch present"; return; }
  make_rootfs "$arch"
  printf 'FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=1 "$DOCKER" build -q --platform "linux/$arch" -t "$BASE_NAME:$arch" "$ctx" >/dev/null
  log "built $BASE_NAME:$arch"
}

build_bases() {
  local pids=() arch
  for arch in "${ARCHES[@]}"; do
    have_image "$BASE_NAME:$arch" && continue
    build_base "$arch" & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || die "building a base image failed"; done
  for arch in "${ARCHES[@]}"; do have_image "$BASE_NAME:$arch" || die "$BASE_NAME:$arch missing"; done
  log "bases ready: $BASE_NAME:{${ARCHES[*]// /,}}"
}

registry_up() { "$PYTHON" - "$REGISTRY_ADDR" <<'EOF' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}/v2/", timeout=2)
EOF
}

start_registry() {
  if registry_up; then log "registry answers on $REGISTRY_ADDR"; return; fi
  mkdir -p "$INFRA_DIR/registry"
  cat >"$INFRA_DIR/registry.yml" <<EOF
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $INFRA_DIR/registry}
  delete: {enabled: true}
http: {addr: "$REGISTRY_ADDR"}
EOF
  log "starting registry on $REGISTRY_ADDR (log: $INFRA_DIR/registry.log)"
  setsid nohup docker-registry serve "$INFRA_DIR/registry.yml" >>"$INFRA_DIR/registry.log" 2>&1 </dev/null &
  for _ in $(seq 1 40); do registry_up && return; sleep 0.25; done
  die "registry did not answer on $REGISTRY_ADDR; see $INFRA_DIR/registry.log"
}

uv_wheel_platforms() { # arch -> pip --platform flags (x86_64 wheels are manylinux_2_17)
  case $1 in
    amd64) echo --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 ;;
    arm64) echo --platform manylinux_2_28_aarch64 --platform manylinux_2_17_aarch64 ;;
  esac
}

build_uv() { # arch
  local arch=$1
  local ctx="$INFRA_DIR/uv-$UV_VERSION-$arch"
  have_image "$UV_NAME:$UV_VERSION-$arch" && return
  rm -rf "$ctx" && mkdir -p "$ctx/wheel"
  # shellcheck disable=SC2046  # the flags split on purpose
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: $(uv_wheel_platforms "$arch") \
    --dest "$ctx/wheel" "uv==$UV_VERSION" || die "pip download uv==$UV_VERSION ($arch) failed"
  "$PYTHON" - "$ctx" <<'EOF' || die "unpacking the uv wheel failed"
import pathlib, sys, zipfile
ctx = pathlib.Path(sys.argv[1])
wheel = next((ctx / "wheel").glob("uv-*.whl"))
with zipfile.ZipFile(wheel) as zf:
    for name in zf.namelist():
        base = name.rsplit("/", 1)[-1]
        if ".data/scripts/" in name and base in ("uv", "uvx"):
            (ctx / base).write_bytes(zf.read(name))
            (ctx / base).chmod(0o755)
EOF
  printf 'FROM scratch\nCOPY uv uvx /\n' >"$ctx/Dockerfile"
  DOCKER_BUILDKIT=1 "$DOCKER" build -q --platform "linux/$arch" -t "$UV_NAME:$UV_VERSION-$arch" "$ctx" >/dev/null
  log "built $UV_NAME:$UV_VERSION-$arch"
}

in_registry() { "$DOCKER" manifest inspect --insecure "$1" >/dev/null 2>&1; }

push_list() { # local name, list tag, per-arch local tag suffix format ("%s" = arch)
  local name=$1 list=$2 fmt=$3 refs=() arch
  local target="$REGISTRY_ADDR/$name:$list"
  in_registry "$target" && { log "$target present"; return; }
  for arch in "${ARCHES[@]}"; do
    local tag
    # shellcheck disable=SC2059
    tag=$(printf "$fmt" "$arch")
    "$DOCKER" tag "$name:$tag" "$REGISTRY_ADDR/$name:$tag"
    "$DOCKER" push -q "$REGISTRY_ADDR/$name:$tag" >/dev/null
    refs+=("$REGISTRY_ADDR/$name:$tag")
  done
  "$DOCKER" manifest rm "$target" >/dev/null 2>&1 || true
  "$DOCKER" manifest create --insecure "$target" "${refs[@]}" >/dev/null
  "$DOCKER" manifest push --insecure --purge "$target" >/dev/null
  log "pushed manifest list $target"
}

main() {
  need_root
  mkdir -p "$INFRA_DIR"
  install_packages
  start_dockerd
  enable_binfmt
  start_registry
  build_bases
  local arch
  for arch in "${ARCHES[@]}"; do build_uv "$arch"; done
  push_list "$BASE_NAME" "$DEBIAN_SUITE" "%s"
  push_list "$UV_NAME" "$UV_VERSION" "$UV_VERSION-%s"
  echo "ARCHLOCK_BASE_IMAGE=$REGISTRY_ADDR/$BASE_NAME:$DEBIAN_SUITE"
  for arch in "${ARCHES[@]}"; do echo "ARCHLOCK_BASE_IMAGE_${arch^^}=$BASE_NAME:$arch"; done
  echo "ARCHLOCK_UV_IMAGE=$REGISTRY_ADDR/$UV_NAME:$UV_VERSION"
  echo "ARCHLOCK_REGISTRY=$REGISTRY_ADDR"
}

main "$@"
