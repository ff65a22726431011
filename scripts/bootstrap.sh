#!/usr/bin/env bash
# Installs what the tests and the demo need, idempotently: a virtual environment with the pinned
# Python packages, and an ansible_collections tree pointing at this checkout. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
VENV=$REPO/.venv
STAMP=$VENV/.installed-$(cat requirements.txt requirements-test.txt constraints.txt | sha256sum | cut -c1-16)

say() { printf '==> %s\n' "$*"; }

if ! command -v python3 >/dev/null; then
  say "installing python3 (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  say "installing python3-venv (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

# The shellcheck program lets ansible-test sanity check the project's shell scripts (Debian package).
if ! command -v shellcheck >/dev/null; then
  say "installing shellcheck (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
fi

# Debian's OpenSSH server: the lab's ssh connection runs the real sshd in front of its machines
# (tests/lab/hvlab/ssh_gateway.py). Installed only; the lab starts its own sshd per lab, never the
# system's service.
if [ ! -x /usr/sbin/sshd ]; then
  say "installing openssh-server (apt)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
fi

if [ ! -f "$STAMP" ]; then
  # Installed into the environment there is (made when missing): removing it would pull it from under
  # a test run of this checkout. CI starts from a fresh clone, so it installs exactly the pins.
  say "installing the pinned requirements into $VENV (requirements-test.txt, constraints.txt)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  log=$(mktemp)
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-test.txt -c constraints.txt 2>"$log"; then
    cat "$log"; exit 1
  fi
  rm -f "$log"
  touch "$STAMP"
fi

# cloud-init is not on PyPI: its Hyper-V KVP reporting handler, the pool-1 writer the KVP tests check
# kvp_pool against (tests/unit/plugins/module_utils/test_kvp_pool_cloud_init.py), comes from Debian's
# package, unpacked here and never installed (nothing lands in the system's Python).
CLOUDINIT_DIR=$REPO/.cache/cloud-init
if [ ! -f "$CLOUDINIT_DIR/usr/lib/python3/dist-packages/cloudinit/reporting/handlers.py" ]; then
  say "unpacking Debian's cloud-init package into $CLOUDINIT_DIR (apt-get download, dpkg-deb -x)"
  work=$(mktemp -d)
  (cd "$work" && { apt-get download cloud-init >/dev/null 2>&1 || { apt-get update -qq && apt-get download cloud-init >/dev/null; }; })
  rm -rf "$CLOUDINIT_DIR"
  mkdir -p "$CLOUDINIT_DIR"  # dpkg-deb makes the last directory only (a fresh clone has no .cache)
  dpkg-deb -x "$work"/cloud-init_*.deb "$CLOUDINIT_DIR"
  rm -rf "$work"
fi

# ansible finds the collection through this tree (ANSIBLE_COLLECTIONS_PATH=.cache/collections).
mkdir -p .cache/collections/ansible_collections/hyperv
ln -sfn "$REPO" .cache/collections/ansible_collections/hyperv/integration

# ansible-test downloads get-pip from a host this machine cannot reach; a stand-in that uses the
# interpreter's own ensurepip does the same job (docs/dev/hyperv-facts.md section 6).
GET_PIP="$HOME/.ansible/test/cache/get_pip_24_2.py"
if [ ! -f "$GET_PIP" ]; then
  mkdir -p "$(dirname "$GET_PIP")"
  cat > "$GET_PIP" <<'PY'
"""Offline stand-in for get-pip.py: install pip with ensurepip, then pass arguments to pip."""
import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
# get-pip's own flags mean "do not install these"; plain pip install would not understand them.
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel", "--disable-pip-version-check")]
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
PY
fi
