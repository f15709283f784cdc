#!/usr/bin/env bash
# Local infrastructure for real multi-arch image builds on a Debian host without Docker Hub.
#
# The one place archlock's tests and CI set up their machine. Idempotent: every step first checks
# whether its result already exists, so a second run takes seconds. It:
#   1. installs Debian's docker.io, debootstrap, docker-registry (only those missing);
#   2. installs buildx and a current QEMU from Debian's newer suites, pinned by version, through a
#      private apt configuration (its own sources file, lists and cache under $INFRA_DIR/apt):
#      the system's apt sources are never changed and nothing is installed through dpkg;
#   3. registers that QEMU for linux/arm64 in binfmt_misc with the F flag (in place of bookworm's);
#   4. lets the engine's BuildKit grant the `network.host` entitlement and caps its build cache
#      (daemon.json: builder.gc, ARCHLOCK_BUILD_CACHE_CAP, default 20GB), then starts dockerd
#      (--iptables=false) unless `docker info` already answers; never a second one. A running
#      dockerd restarts only when daemon.json changed, and never while it builds or runs a
#      container (then the next run restarts it);
#   5. builds base images archlock/debian-bookworm:{amd64,arm64} from debootstrap root filesystems
#      (FROM scratch + ADD rootfs.tar, built with --platform: `docker import` mislabels arm64);
#   6. starts a registry on 127.0.0.1:5000 (BuildKit and buildx read bases from a registry);
#   7. makes a uv image per arch from PyPI's static (musllinux) `uv` wheels (the same layout and
#      binaries as upstream's uv image: /uv and /uvx in an empty image);
#   8. pushes bases and uv as manifest lists, and prints the references to build with
#      (ARCHLOCK_BASE_IMAGE: the multi-arch base list; ARCHLOCK_BASE_IMAGE_<ARCH>: the local
#      per-arch tags; ARCHLOCK_UV_IMAGE; ARCHLOCK_REGISTRY; ARCHLOCK_REGISTRY_CONFIG, which
#      `archlock clean` garbage-collects).
#
# Facts this relies on (measured on Debian 12, x86_64, docker.io 20.10 engine):
# - bookworm has no buildx. sid's docker-buildx 0.29.1 needs only libc6 >= 2.34 and runs with
#   bookworm's engine (driver `docker`, BuildKit 0.8: linux/amd64 and linux/arm64 by binfmt);
#   trixie's 0.13.1 rejects `network` in bake files. The plugin is one static file; the docker
#   CLIs (Debian's 20.10 and Docker's 28) both search /usr/local/libexec/docker/cli-plugins.
# - bookworm's qemu-user-static 7.2 kills `import torch` >= 2.12 on linux/arm64 with SIGSEGV;
#   trixie's qemu-user 10.0 ships a static qemu-aarch64 that runs it. The F flag makes the kernel
#   open the interpreter at registration, so it works inside containers and chroots.
# - The docker driver builds one platform per image and cannot push a manifest list or attach
#   SBOM/provenance attestations (that needs the containerd image store or a docker-container
#   builder, whose BuildKit image comes from Docker Hub): `archlock build` says so and assembles
#   the list with `docker buildx imagetools create`.
# - BuildKit runs `--network host` steps only with the `network.host` entitlement, which the
#   client asks for (`--allow network.host`) and the daemon must grant: daemon.json
#   {"builder": {"Entitlements": {"network-host": true}}}. Engine 20.10 grants it by default;
#   the setting makes that explicit for engines that do not. With --iptables=false the bridge has
#   no outbound access, so builds that reach a package index need host networking.
# - BuildKit's garbage collection (docker docs: "Build garbage collection"): with the docker
#   driver it is set in daemon.json, {"builder": {"gc": {"enabled": true, "defaultKeepStorage":
#   "20GB"}}}; engine 20.10 reads those two keys (newer engines too) and derives its default
#   policies from the cap. 20GB holds CI's warm layers (the 7.5 GB CUDA image's venv layer, the
#   small arm64 images, uv's cache mounts) while a few runs no longer pile up 50 GB.
#
# Usage: scripts/local-infra.sh [--print-env]
#   --print-env   only print the KEY=VALUE lines (for `eval` or a dotenv file) at the end
# Settings (environment): ARCHLOCK_INFRA_DIR (state and logs), UV_VERSION, DEBIAN_SUITE,
#   DEBIAN_MIRROR (debootstrap's default when empty), DEBIAN_NEWER_MIRROR (default: the Debian
#   mirror of the system's own apt sources), BUILDX_DEB, QEMU_DEB (package=version pins),
#   REGISTRY_ADDR, PYTHON (for `pip download`), ARCHLOCK_BUILD_CACHE_CAP (BuildKit's GC cap, 20GB).
set -euo pipefail

INFRA_DIR="${ARCHLOCK_INFRA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/archlock/infra}"
UV_VERSION="${UV_VERSION:-0.13.9}"
DEBIAN_SUITE="${DEBIAN_SUITE:-bookworm}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-}"
REGISTRY_ADDR="${REGISTRY_ADDR:-127.0.0.1:5000}"
PYTHON="${PYTHON:-python3}"
DEBIAN_NEWER_MIRROR="${DEBIAN_NEWER_MIRROR:-}"
BUILDX_DEB="${BUILDX_DEB:-docker-buildx=0.29.1+ds1-4}" # from sid
QEMU_DEB="${QEMU_DEB:-qemu-user=1:10.0.13+ds-0+deb13u1}" # from trixie
BUILD_CACHE_CAP="${ARCHLOCK_BUILD_CACHE_CAP:-20GB}" # BuildKit's GC keeps its cache below this
PLUGIN_DIR=/usr/local/libexec/docker/cli-plugins
QEMU_BIN=/usr/local/bin/qemu-aarch64-static # registered by path; F: the kernel opens it once
DAEMON_JSON=/etc/docker/daemon.json
DOCKER="/usr/bin/docker" # Debian's client: BuildKit built in (the buildx plugin may be missing)
ARCHES=(amd64 arm64)
BASE_NAME="archlock/debian-${DEBIAN_SUITE}"
# static uv (musl), as upstream's image has it: the image's venv RUNs run the build machine's uv
# inside the target platform's root, where a glibc-linked uv would find no loader
UV_NAME="archlock/uv-static"
QUIET=0
[[ "${1:-}" == "--print-env" ]] && QUIET=1

log() { [[ $QUIET == 1 ]] || echo "local-infra: $*" >&2; }
die() { echo "local-infra: error: $*" >&2; exit 1; }

need_root() {
  [[ $(id -u) == 0 ]] || die "run as root (installs packages, starts dockerd, mounts binfmt_misc)"
}

install_packages() {
  local wanted=(docker.io debootstrap docker-registry python3-pip)
  local missing=()
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
  done
  [[ ${#missing[@]} == 0 ]] && { log "packages present"; return; }
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

detached() { # CMD...: in its own session, holding none of this shell's open files. A daemon that
  # inherits a caller's lock file (`flock LOCK local-infra.sh`, or restart_dockerd's fd 9) holds
  # that lock for its whole life, and every later waiter blocks on it.
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done 2>/dev/null
    exec setsid nohup "$@"
  )
}

start_dockerd() { # a dockerd started here reads daemon.json as it is now
  if "$DOCKER" info >/dev/null 2>&1; then log "dockerd already running"; return; fi
  rm -f "$INFRA_DIR/dockerd-restart-pending"
  log "starting dockerd (log: $INFRA_DIR/dockerd.log)"
  # --iptables=false: this host may not allow NAT rules; builds that need the network use
  # --network host. Never --bridge=none: it deletes docker0 under any other daemon.
  detached dockerd --iptables=false >>"$INFRA_DIR/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    "$DOCKER" info >/dev/null 2>&1 && { log "dockerd ready"; return; }
    sleep 0.5
  done
  die "dockerd did not answer in 30 s; see $INFRA_DIR/dockerd.log"
}

# -- newer Debian packages, never through the system's sources --------------------------------
newer_mirror() { # the Debian mirror the system already uses (DEBIAN_NEWER_MIRROR overrides)
  if [[ -n $DEBIAN_NEWER_MIRROR ]]; then echo "$DEBIAN_NEWER_MIRROR"; return; fi
  local codename uri
  codename=$(sed -n "s/^VERSION_CODENAME=//p" /etc/os-release)
  # shellcheck disable=SC2016  # apt expands $(REPO_URI), not the shell
  uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 2>/dev/null \
    | awk -v c="$codename" '$2 == c && $1 !~ /security/ {print $1; exit}')
  [[ -n $uri ]] || die "no Debian mirror in the system's apt sources; set DEBIAN_NEWER_MIRROR=URL"
  echo "$uri"
}

newer_apt() { # args... -> apt-get with a private sources file, lists and cache
  local dir="$INFRA_DIR/apt"
  apt-get -q -o Dir::Etc::SourceList="$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::State::Lists="$dir/lists" -o Dir::Cache="$dir/cache" "$@"
}

newer_update() { # once: trixie + sid package lists under $INFRA_DIR/apt
  local dir="$INFRA_DIR/apt" mirror keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  [[ -e $dir/updated ]] && return
  mirror=$(newer_mirror)
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" trixie "$keyring" "$mirror" sid \
    >"$dir/sources.list"
  newer_apt update -qq >"$dir/update.log" 2>&1 \
    || die "apt update of Debian's newer suites failed; see $dir/update.log"
  touch "$dir/updated"
}

fetch_deb() { # package=version -> path of its unpacked tree (dpkg-deb -x, no dpkg database)
  local pin=$1 dir="$INFRA_DIR/apt"
  local tree="$dir/tree-${pin//[:=]/_}"
  if [[ ! -e $tree/.done ]]; then
    newer_update
    rm -rf "$dir/debs" "$tree" && mkdir -p "$dir/debs" "$tree"
    # apt's sandbox user cannot write into root's cache folder: download as root, quietly
    (cd "$dir/debs" && newer_apt -o APT::Sandbox::User=root download "$pin" >"$dir/download.log" 2>&1) \
      || die "apt-get download $pin failed (gone from Debian's newer suites? set BUILDX_DEB or QEMU_DEB); see $dir/download.log"
    dpkg-deb -x "$dir"/debs/*.deb "$tree"
    touch "$tree/.done"
  fi
  echo "$tree"
}

install_buildx() {
  local want=${BUILDX_DEB#*=} tree
  if "$DOCKER" buildx version 2>/dev/null | grep -qF " $want"; then log "buildx $want present"; return; fi
  tree=$(fetch_deb "$BUILDX_DEB")
  install -D -m 0755 "$tree/usr/libexec/docker/cli-plugins/docker-buildx" "$PLUGIN_DIR/docker-buildx"
  "$DOCKER" buildx version | grep -qF " $want" || die "docker buildx does not answer with $want"
  log "installed buildx $want into $PLUGIN_DIR"
}

install_qemu() {
  local want=${QEMU_DEB#*=} tree
  want=${want#*:} && want=${want%%+*} # 1:10.0.13+ds-0+deb13u1 -> 10.0.13
  if "$QEMU_BIN" --version 2>/dev/null | grep -qF "version $want"; then
    log "qemu-aarch64 $want present"; return
  fi
  tree=$(fetch_deb "$QEMU_DEB")
  install -m 0755 "$tree/usr/bin/qemu-aarch64" "$QEMU_BIN.part" && mv "$QEMU_BIN.part" "$QEMU_BIN"
  "$QEMU_BIN" --version | grep -qF "version $want" || die "$QEMU_BIN does not run"
  log "installed qemu-aarch64 $want as $QEMU_BIN"
}

register_binfmt() { # our qemu-aarch64, F flag, in place of any other aarch64 entry
  local dir=/proc/sys/fs/binfmt_misc magic mask tree
  local entry="$dir/qemu-aarch64"
  [[ -e $dir/register ]] || mount -t binfmt_misc binfmt_misc "$dir"
  if grep -qx "interpreter $QEMU_BIN" "$entry" 2>/dev/null && grep -q '^flags:.*F' "$entry" \
    && grep -qx enabled "$entry"; then
    log "binfmt qemu-aarch64 -> $QEMU_BIN (F flag)"; return
  fi
  # binfmt-support (bookworm's qemu-user-static 7.2) puts its own entry back on `--enable`
  if command -v update-binfmts >/dev/null; then update-binfmts --disable qemu-aarch64 >/dev/null 2>&1 || true; fi
  if [[ -e $entry ]]; then echo -1 >"$entry"; fi
  tree=$(fetch_deb "$QEMU_DEB") # the package's own magic and mask for aarch64 ELF files
  IFS=: read -r _ _ _ _ magic mask _ <"$tree/usr/share/qemu/binfmt.d/qemu-aarch64.conf"
  printf ':qemu-aarch64:M::%s:%s:%s:F' "$magic" "$mask" "$QEMU_BIN" >"$dir/register"
  grep -qx "interpreter $QEMU_BIN" "$entry" || die "registering $QEMU_BIN in binfmt_misc failed"
  log "binfmt qemu-aarch64 -> $QEMU_BIN (F flag), replacing the previous entry"
}

configure_builder() { # daemon.json: network-host entitlement + BuildKit GC cap; prints "changed"
  mkdir -p "$(dirname "$DAEMON_JSON")"
  "$PYTHON" - "$DAEMON_JSON" "$BUILD_CACHE_CAP" <<'EOF' || die "cannot update $DAEMON_JSON (is it valid JSON?)"
import json, os, sys
path, cap = sys.argv[1], sys.argv[2]
config = json.load(open(path)) if os.path.exists(path) and os.path.getsize(path) else {}
builder = config.setdefault("builder", {})
before = json.dumps(builder, sort_keys=True)
builder.setdefault("Entitlements", {})["network-host"] = True
builder.setdefault("gc", {}).update({"enabled": True, "defaultKeepStorage": cap})
if json.dumps(builder, sort_keys=True) != before:
    with open(path + ".part", "w") as out:
        json.dump(config, out, indent=2)
    os.replace(path + ".part", path)
    print("changed")
EOF
}

network_host_allowed() { # does the running engine let a build step use --network host?
  printf 'FROM %s\nRUN true\n' "$BASE_NAME:amd64" | "$DOCKER" buildx build -q --network host \
    --allow network.host --platform linux/amd64 -o type=cacheonly - >/dev/null 2>"$INFRA_DIR/probe.log" \
    || ! grep -q "entitlement" "$INFRA_DIR/probe.log"
}

engine_busy() { # a build or a container that a restart would kill
  pgrep -f -- '(docker|docker-buildx) (buildx )?(build|bake)( |$)' >/dev/null 2>&1 \
    || [[ -n $("$DOCKER" ps -q 2>/dev/null) ]]
}

restart_dockerd() { # so that a running engine reads a changed daemon.json; never under a build
  local pid pending="$INFRA_DIR/dockerd-restart-pending"
  touch "$pending"
  pid=$(cat /var/run/docker.pid 2>/dev/null) || die "dockerd must reread $DAEMON_JSON and has no pid file"
  exec 9>/tmp/docker.lock
  flock -w 900 9 || die "waited 15 min for /tmp/docker.lock; restart dockerd yourself"
  if engine_busy; then
    log "dockerd is building or running containers: it reads $DAEMON_JSON at the next run's restart"
    exec 9>&-
    return
  fi
  log "restarting dockerd (pid $pid) so that it reads $DAEMON_JSON"
  kill "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  start_dockerd
  rm -f "$pending"
  exec 9>&-
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
  detached docker-registry serve "$INFRA_DIR/registry.yml" >>"$INFRA_DIR/registry.log" 2>&1 </dev/null &
  for _ in $(seq 1 40); do registry_up && return; sleep 0.25; done
  die "registry did not answer on $REGISTRY_ADDR; see $INFRA_DIR/registry.log"
}

uv_wheel_platforms() { # arch -> pip --platform flags (the musllinux wheels hold static binaries)
  case $1 in
    amd64) echo --platform musllinux_1_1_x86_64 ;;
    arm64) echo --platform musllinux_1_1_aarch64 ;;
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
  install_buildx
  install_qemu
  register_binfmt
  local daemon_config
  daemon_config=$(configure_builder)
  if [[ $daemon_config == changed ]]; then touch "$INFRA_DIR/dockerd-restart-pending"; fi
  start_dockerd
  start_registry
  build_bases
  if [[ -e $INFRA_DIR/dockerd-restart-pending ]]; then restart_dockerd; fi
  network_host_allowed || die "the engine refuses --network host builds; see $INFRA_DIR/probe.log"
  local arch
  for arch in "${ARCHES[@]}"; do build_uv "$arch"; done
  push_list "$BASE_NAME" "$DEBIAN_SUITE" "%s"
  push_list "$UV_NAME" "$UV_VERSION" "$UV_VERSION-%s"
  echo "ARCHLOCK_BASE_IMAGE=$REGISTRY_ADDR/$BASE_NAME:$DEBIAN_SUITE"
  for arch in "${ARCHES[@]}"; do echo "ARCHLOCK_BASE_IMAGE_${arch^^}=$BASE_NAME:$arch"; done
  echo "ARCHLOCK_UV_IMAGE=$REGISTRY_ADDR/$UV_NAME:$UV_VERSION"
  echo "ARCHLOCK_REGISTRY=$REGISTRY_ADDR"
  echo "ARCHLOCK_REGISTRY_CONFIG=$INFRA_DIR/registry.yml"
}

main "$@"
