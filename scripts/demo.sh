#!/usr/bin/env bash
# The demo: a lab with a German-language Hyper-V host double, a Windows guest and a Linux guest (a real
# Debian 12 systemd guest); demo/site.yml applies the collection's roles to host and guests; a table of
# host and guest state before and after; a second run that must report changed=0 on every host; the
# lab is taken down at the end, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

say() { printf '\n==> %s\n' "$*"; }

say "installing what the demo needs (scripts/bootstrap.sh: a Python venv with ansible-core and pywinrm)"
bash scripts/bootstrap.sh
export PATH="$REPO/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$REPO/.cache/collections"
export ANSIBLE_NOCOLOR=1 ANSIBLE_HOST_KEY_CHECKING=False ANSIBLE_CALLBACK_RESULT_FORMAT=yaml
export ANSIBLE_DISPLAY_SKIPPED_HOSTS=False

say "building the Linux guest image (Debian 12 with hyperv-daemons, debootstrap: about a minute the first time, then cached in .cache/lab-image)"
bash tests/lab/linux_image/build.sh "$REPO/.cache/lab-image"

LAB_DIR=$(mktemp -d)
trap 'say "taking the lab down"; tests/lab/lab down --dir "$LAB_DIR" >/dev/null 2>&1 || true; rm -rf "$LAB_DIR"' EXIT

say "starting the lab: Hyper-V host hv01 (de-DE), Windows guest web01, Linux guest lin01"
tests/lab/lab up demo/lab.yml --dir "$LAB_DIR"
INVENTORY="$LAB_DIR/inventory.yml"

say "before: host and guest state"
ansible-playbook -i "$INVENTORY" demo/report.yml -e demo_report_file="$LAB_DIR/before.txt" >"$LAB_DIR/before.log" \
  || { tail -40 "$LAB_DIR/before.log"; exit 1; }
cat "$LAB_DIR/before.txt"

say "first run of demo/site.yml (roles integration_services, linux_guest, hvsocket)"
status=0
ansible-playbook -i "$INVENTORY" demo/site.yml >"$LAB_DIR/first.log" || status=$?
grep -E '^(PLAY|TASK|changed|fatal|failed)|RECAP|: ok=' "$LAB_DIR/first.log" || true
if [ "$status" -ne 0 ]; then
  echo "the first run failed (exit code $status):"; tail -60 "$LAB_DIR/first.log"; exit 1
fi

say "second run: nothing left to change"
ansible-playbook -i "$INVENTORY" demo/site.yml >"$LAB_DIR/second.log" || { tail -60 "$LAB_DIR/second.log"; exit 1; }
sed -n '/PLAY RECAP/,$p' "$LAB_DIR/second.log"
if grep -E ': ok=' "$LAB_DIR/second.log" | grep -v 'changed=0' >/dev/null; then
  echo "the second run changed something (it should not):"; exit 1
fi
echo "changed=0 on every host"

say "after: host and guest state"
ansible-playbook -i "$INVENTORY" demo/report.yml -e demo_report_file="$LAB_DIR/after.txt" >"$LAB_DIR/after.log" \
  || { tail -40 "$LAB_DIR/after.log"; exit 1; }
cat "$LAB_DIR/after.txt"

tests/lab/lab state --dir "$LAB_DIR" | python3 -c '
import json, sys
c = json.load(sys.stdin)["host"]["counters"]
print("==> the Hyper-V host double ran %d PowerShell commands and made %d writes in all" % (c["commands"], c["writes"]))'
