#!/usr/bin/env bash
# Creates (once per requirements-release.txt content) the virtual environment of the release and docs
# tools, .cache/release-venv, and prints its path. Used by scripts/release_checks.sh and scripts/docs.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$PWD/.cache/release-venv
STAMP=$VENV/.installed-$(sha256sum requirements-release.txt | cut -c1-16)
if [ ! -f "$STAMP" ]; then
  printf '==> creating %s (requirements-release.txt)\n' "$VENV" >&2
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  log=$(mktemp)
  if ! "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements-release.txt >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; exit 1
  fi
  rm -f "$log"
  touch "$STAMP"
fi
printf '%s\n' "$VENV"
