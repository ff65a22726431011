#!/usr/bin/env bash
# Builds the lab's Linux guest image (README.md beside this script): a Debian bookworm root file
# system with systemd, sshd, python3 and hyperv-daemons, plus the lab's stand-ins for kernel
# facilities a container cannot have (files under rootfs/, units generated below).
#
#   build.sh [IMAGE_DIR]     default: <repo>/.cache/lab-image
#
# Idempotent and cached: IMAGE_DIR/stamp holds the hash of the build inputs (this script, the
# files beside it except README.md, the mirror and the architecture). The image is rebuilt only
# when that hash changes; the debootstrap stage (the slow part) only when the package set,
# mirror or architecture change. Result: IMAGE_DIR/rootfs-<hash> (IMAGE_DIR/rootfs points at it),
# used read-only as the lower layer of one overlay per container. Needs root.
#
# Mirror: the first `deb` source for bookworm/main in /etc/apt/sources.list.d/*.sources or
# /etc/apt/sources.list; HVLAB_IMAGE_MIRROR overrides it.
set -euo pipefail

SUITE=bookworm
# cloud-init: its Hyper-V KVP reporting handler is the pool-1 writer the KVP tests cross-check against
# (tests/integration/test_kvp_cloud_init.py); it is installed, and disabled at boot (customize below).
# python3-cffi-backend is named because debootstrap does not resolve virtual packages: it provides the
# python3-cffi-backend-api-min/-max that python3-cryptography (cloud-init -> python3-oauthlib) needs.
PACKAGES=systemd,systemd-sysv,dbus,openssh-server,python3,kmod,hyperv-daemons,procps,cloud-init,python3-cffi-backend
BASE_FORMAT=1 # bump to force a new debootstrap stage
DAEMON_UNITS="hv-kvp-daemon.service hv-vss-daemon.service hv-fcopy-daemon.service"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
image_dir=${1:-$repo/.cache/lab-image}

say() { printf '==> lab image: %s\n' "$*"; }
die() {
  printf 'lab image: %s\n' "$*" >&2
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "building the guest image needs root (debootstrap, chroot)"

# -- mirror ---------------------------------------------------------------------------------------
# deb822 stanzas: Types has deb, Suites has the suite itself (not -updates), Components has main.
mirror_from_deb822() {
  awk -v suite="$SUITE" '
    BEGIN { RS = ""; FS = "\n" }
    {
      types = ""; uris = ""; suites = ""; comps = ""; enabled = "yes"; field = ""
      for (i = 1; i <= NF; i++) {
        line = $i
        if (line ~ /^#/) continue
        if (line ~ /^[ \t]/) { value = line } else {
          field = tolower(line); sub(/:.*/, "", field)
          value = line; sub(/^[^:]*:/, "", value)
        }
        if (field == "types") types = types " " value
        else if (field == "uris") uris = uris " " value
        else if (field == "suites") suites = suites " " value
        else if (field == "components") comps = comps " " value
        else if (field == "enabled") enabled = value
      }
      gsub(/[ \t]+/, " ", types); gsub(/[ \t]+/, " ", suites); gsub(/[ \t]+/, " ", comps)
      gsub(/[ \t]+/, "", enabled)
      if (tolower(enabled) == "no") next
      if ((types " ") !~ / deb / || (suites " ") !~ (" " suite " ") || (comps " ") !~ / main /) next
      split(uris, u, /[ \t]+/)
      for (j in u) if (u[j] != "") { print u[j]; exit }
    }' "$@"
}

mirror_from_list() {
  awk -v suite="$SUITE" '
    $1 == "deb" {
      i = 2
      if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) != suite) next
      for (k = i + 2; k <= NF; k++) if ($k == "main") { print $i; exit }
    }' "$@"
}

find_mirror() {
  local found="" f
  if [ -n "${HVLAB_IMAGE_MIRROR:-}" ]; then
    printf '%s\n' "$HVLAB_IMAGE_MIRROR"
    return
  fi
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    found=$(mirror_from_deb822 "$f")
    [ -z "$found" ] || break
  done
  if [ -z "$found" ]; then
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      found=$(mirror_from_list "$f")
      [ -z "$found" ] || break
    done
  fi
  [ -n "$found" ] || die "no 'deb' source for $SUITE/main in /etc/apt (set HVLAB_IMAGE_MIRROR)"
  printf '%s\n' "${found%/}"
}

# -- build inputs ---------------------------------------------------------------------------------
input_files() {
  (cd "$here" && find . \( -type f -o -type l \) ! -name README.md -print | LC_ALL=C sort)
}

inputs_hash() {
  {
    printf 'base %s\nimage-format 1\n' "$1"
    input_files | while IFS= read -r f; do
      if [ -L "$here/$f" ]; then
        printf 'link %s %s\n' "$f" "$(readlink "$here/$f")"
      else
        printf 'file %s %s %s\n' "$f" "$(stat -c %a "$here/$f")" "$(sha256sum <"$here/$f" | cut -c1-64)"
      fi
    done
  } | sha256sum | cut -c1-16
}

# -- steps ------------------------------------------------------------------------------------------
need_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
  command -v gcc >/dev/null || missing+=(gcc)
  [ -f /usr/include/linux/ptp_clock.h ] && [ -f /usr/include/dlfcn.h ] || missing+=(libc6-dev linux-libc-dev)
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

build_base() { # $1: target directory, $2: mirror
  local log="$image_dir/debootstrap.log"
  say "debootstrap $SUITE from $2 (about a minute; log: $log)"
  if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$1" "$2" >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "debootstrap failed (full log: $log)"
  fi
  rm -f "$1"/var/cache/apt/archives/*.deb
  rm -rf "$1"/var/lib/apt/lists/*
}

customize() { # $1: root file system
  local root=$1 unit src
  say "adding the lab's stand-ins and settings"
  # Files that go into the image as they are (owner root, modes from the checkout).
  tar -C "$here/rootfs" --owner=0 --group=0 -cf - . | tar -C "$root" --no-overwrite-dir -xpf -
  # The modprobe stand-in, found before /usr/sbin/modprobe through PATH (kmod stays as packaged).
  printf '#!/bin/sh\n# hvlab guest image: modprobe stand-in (/usr/local/lib/hvlab/modprobe.py)\nexec /usr/bin/python3 /usr/local/lib/hvlab/modprobe.py "$@"\n' \
    >"$root/usr/local/sbin/modprobe"
  chmod 0755 "$root/usr/local/sbin/modprobe"

  # The Hyper-V PTP clock as chronyd sees it (phc_standin.c; preloaded by the chrony.service drop-in).
  # Built here against this machine's C library, then checked to load in the image's own.
  gcc -shared -fPIC -O2 -Wall -Werror -o "$root/usr/local/lib/hvlab/libhvlab-phc.so" "$here/phc_standin.c" -ldl
  chmod 0644 "$root/usr/local/lib/hvlab/libhvlab-phc.so"
  local preload_err
  preload_err=$(chroot "$root" /usr/bin/env LD_PRELOAD=/usr/local/lib/hvlab/libhvlab-phc.so /bin/true 2>&1) || true
  [ -z "$preload_err" ] || die "the PHC stand-in library does not load in the image: $preload_err"

  # The KVP and file copy devices as hv_kvp_daemon and hv_fcopy_daemon see them (hvt_standin.c, built
  # once per device; preloaded by each daemon's drop-in). Checked the same way, and with each daemon
  # itself (--help opens no device).
  local dev
  for dev in kvp fcopy; do
    gcc -shared -fPIC -O2 -Wall -Werror -DDEVICE_PATH="\"/dev/vmbus/hv_$dev\"" -DSOCKET_PATH="\"/run/hvlab/hv_$dev.sock\"" \
      -o "$root/usr/local/lib/hvlab/libhvlab-$dev.so" "$here/hvt_standin.c" -ldl
    chmod 0644 "$root/usr/local/lib/hvlab/libhvlab-$dev.so"
    preload_err=$(chroot "$root" /usr/bin/env LD_PRELOAD="/usr/local/lib/hvlab/libhvlab-$dev.so" "/usr/sbin/hv_${dev}_daemon" --help 2>&1 >/dev/null | grep -v '^Usage\|^Options\|^  -') || true
    [ -z "$preload_err" ] || die "the $dev stand-in library does not load in the image: $preload_err"
  done

  # Daemon units: the package's own unit minus BindsTo= on the device unit (no udev in a container:
  # the device unit never appears, so BindsTo= would stop the daemon at once). Dependencies cannot
  # be reset in a drop-in, hence a full copy with the same name in /usr/local/lib/systemd/system,
  # which comes before /lib/systemd/system in the unit search path. [Install] stays as packaged;
  # the stand-in daemon comes from the drop-in (rootfs/usr/local/lib/systemd/system/*.service.d).
  for unit in $DAEMON_UNITS; do
    src=$root/lib/systemd/system/$unit
    [ -f "$src" ] || die "hyperv-daemons did not install $unit"
    {
      printf '# hvlab guest image: copy of /lib/systemd/system/%s without BindsTo= (see the lab README)\n' "$unit"
      grep -v '^BindsTo=' "$src"
    } >"$root/usr/local/lib/systemd/system/$unit"
  done

  # Stand-in for udev device activation and module loading, pulled in like systemd-udev-trigger.
  mkdir -p "$root/usr/local/lib/systemd/system/sysinit.target.wants"
  ln -sfn ../hvlab-kernel-standin.service "$root/usr/local/lib/systemd/system/sysinit.target.wants/hvlab-kernel-standin.service"

  # cloud-init stays off at boot: its systemd generator finds /etc/cloud/cloud-init.disabled (etc_file in
  # /lib/systemd/system-generators/cloud-init-generator) and enables none of its units. Tests call its
  # Python API themselves.
  install -d -m 0755 "$root/etc/cloud"
  : >"$root/etc/cloud/cloud-init.disabled"

  # Per-guest values (hostname, machine id, sshd address, root's key) are written by the lab into
  # each container's own overlay; the image keeps neutral ones.
  printf 'hvlab-guest\n' >"$root/etc/hostname"
  : >"$root/etc/machine-id"
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' >"$root/etc/hosts"
  : >"$root/etc/fstab"
  printf 'LANG=C.UTF-8\n' >"$root/etc/default/locale"
  install -d -m 0700 "$root/root/.ssh"
  printf 'image %s\nbuilt %s\n' "$2" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$root/etc/hvlab-image"
}

# -- main -------------------------------------------------------------------------------------------
mkdir -p "$image_dir"
exec 9>"$image_dir/.build.lock"
flock 9 # one build at a time; guests hold it shared while they pick the image (linux_guest.py)

mirror=$(find_mirror)
arch=$(dpkg --print-architecture)
base_key="$SUITE $PACKAGES $mirror $arch $BASE_FORMAT"
base_hash=$(printf '%s\n' "$base_key" | sha256sum | cut -c1-16)
hash=$(inputs_hash "$base_hash")
rootfs=$image_dir/rootfs-$hash

if [ -f "$image_dir/stamp" ] && [ "$(cat "$image_dir/stamp")" = "$hash" ] && [ -d "$rootfs" ]; then
  say "up to date ($rootfs)"
  exit 0
fi

need_tools
start=$(date +%s)
base=$image_dir/base-$base_hash
if [ ! -f "$base/.hvlab-base-complete" ]; then
  rm -rf "$base" "$base.tmp"
  build_base "$base.tmp" "$mirror"
  touch "$base.tmp/.hvlab-base-complete"
  mv "$base.tmp" "$base"
else
  say "reusing the debootstrap stage ($base)"
fi
for old in "$image_dir"/base-*; do
  [ "$old" = "$base" ] || rm -rf "$old"
done

say "assembling $rootfs"
rm -rf "$rootfs.tmp"
cp -a "$base" "$rootfs.tmp"
rm -f "$rootfs.tmp/.hvlab-base-complete"
customize "$rootfs.tmp" "$hash"
rm -rf "$rootfs"
mv "$rootfs.tmp" "$rootfs"
ln -sfn "rootfs-$hash" "$image_dir/rootfs.tmp" && mv -T "$image_dir/rootfs.tmp" "$image_dir/rootfs"
printf '%s\n' "$hash" >"$image_dir/stamp.tmp" && mv "$image_dir/stamp.tmp" "$image_dir/stamp"

# Older images go once no container uses them (a running guest holds rootfs-<hash>.lock shared).
for old in "$image_dir"/rootfs-*; do
  case $old in "$rootfs" | *.lock | *.tmp) continue ;; esac
  if flock -n -x "$old.lock" true; then
    rm -rf "$old" "$old.lock"
  else
    say "keeping $old: a running guest still uses it"
  fi
done
say "ready in $(($(date +%s) - start)) s: $rootfs"
