#!/usr/bin/env bash
# Runs the tests, by stage: bash scripts/test.sh [STAGE ...]   (no stage: every stage, in this order)
#   lint         ruff (check and format), ansible-lint and mypy
#   sanity       ansible-test sanity on a copy of the collection
#   release      scripts/release_checks.sh: galaxy build and tarball, galaxy-importer, docs lint, changelog
#   unit         pytest tests/unit: pure Python, the static PowerShell contract checks, golden contract
#                cases and error mapping against the in-process lab (what a bare `pytest` runs)
#   lab          the lab's own tests (tests/lab/tests)
#   integration  real ansible-playbook runs against the lab (tests/integration), and the real-host suite
#                run against the lab (tests/realhost; against a real host only when
#                HYPERV_INTEGRATION_REAL_INVENTORY is set, see docs/dev/real-host-testing.md)
#   reliability  hostile strings, fault matrix, check mode, forks (tests/reliability)
#   molecule     scripts/molecule.sh: every scenario in extensions/molecule
# Installs what it needs first (scripts/bootstrap.sh), builds the lab's Linux guest image when a stage
# needs it, and ends with how long each stage took.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
ALL=(lint sanity release unit lab integration reliability molecule)

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=("${ALL[@]}")
for s in "${stages[@]}"; do
  case " ${ALL[*]} " in *" $s "*) ;; *) echo "unknown stage '$s'; stages: ${ALL[*]}" >&2; exit 2 ;; esac
done

banner() { printf '\n==== %s ====\n' "$*"; }
timings=()
run_stage() {
  local name=$1 start=$SECONDS
  banner "$name"
  "stage_$name"
  timings+=("$(printf '%-12s %5d s' "$name" $((SECONDS - start)))")
}

image_ready=false
guest_image() {
  if ! $image_ready; then
    banner "the lab's Linux guest image (built once, then cached in .cache/lab-image)"
    bash tests/lab/linux_image/build.sh "$REPO/.cache/lab-image"
    image_ready=true
  fi
}

pytest_run() { python -m pytest "$@" -q -p no:cacheprovider; }
# Two at a time, a test file per worker: every test starts its own lab on free ports (its Linux guests
# are containers named after their directories), and the ansible-playbook runs they wait on leave a
# core idle. Measured in docs/dev/testing.md.
parallel=(-n 2 --dist loadfile)

stage_lint() {
  ruff check .
  ruff format --check plugins tests
  ansible-lint
  # mypy (settings in pyproject.toml): the collection as ansible imports it, the lab, the test support
  # and the static PowerShell checks.
  MYPYPATH="$REPO/.cache/collections:$REPO/tests/lab:$REPO/tests" \
    mypy -p ansible_collections.hyperv.integration.plugins -p hvlab -p support -p pscheck
}

stage_sanity() {
  # Its pslint test needs pwsh (PowerShell 7), which no registry these machines reach provides, so
  # ansible-test skips it with a warning; tests/unit parses and checks every shipped .ps1 instead.
  # ansible-test wants the collection at ansible_collections/hyperv/integration: test a copy of the
  # files git knows about (tracked, or new and not ignored), so caches and the venv stay out.
  local root dest
  root=$(mktemp -d)
  dest="$root/ansible_collections/hyperv/integration"
  mkdir -p "$dest"
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
    | tar --null -cf - -T - | tar -xf - -C "$dest"
  (cd "$dest" && ansible-test sanity --python 3.11 --color no 2>&1 \
    | grep -v -E '^WARNING: Location|^Looking in|^  Downloading|━━')
  rm -rf "$root"
}

stage_release() { bash scripts/release_checks.sh; }
stage_unit() { pytest_run tests/unit; }
stage_lab() { guest_image; pytest_run -n 0 tests/lab/tests; }
stage_integration() { guest_image; pytest_run "${parallel[@]}" tests/integration tests/realhost; }
# test_forks.py measures that 20 forks overlap (wall time under half of running them one by one), so
# it runs alone, after the others, with the machine to itself.
stage_reliability() {
  guest_image
  pytest_run "${parallel[@]}" tests/reliability --ignore=tests/reliability/test_forks.py
  pytest_run -n 0 tests/reliability/test_forks.py
}
stage_molecule() { guest_image; bash scripts/molecule.sh; }

banner "install (scripts/bootstrap.sh)"
bash scripts/bootstrap.sh
export PATH="$REPO/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$REPO/.cache/collections"

for s in "${stages[@]}"; do run_stage "$s"; done

banner "time per stage"
printf '%s\n' "${timings[@]}"
