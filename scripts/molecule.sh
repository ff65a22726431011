#!/usr/bin/env bash
# Runs `molecule test` for the Molecule scenarios under extensions/molecule/ (docs/dev/molecule.md):
#
#   scripts/molecule.sh              every scenario, one after the other; fails if any fails
#   scripts/molecule.sh hvsocket     just the named scenario(s)
#
# Each scenario starts its own lab (tests/lab) and stops it again. Needs root: the lab's Linux guests
# are systemd-nspawn containers. The collection is found through ANSIBLE_COLLECTIONS_PATH
# (.cache/collections, whose hyperv/integration points at this checkout); nothing is installed into
# ~/.ansible. Molecule's working files for a scenario go to .cache/molecule/<scenario>.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

bash scripts/bootstrap.sh
export PATH="$REPO/.venv/bin:$PATH"
export ANSIBLE_COLLECTIONS_PATH="$REPO/.cache/collections"
if [ ! -t 1 ]; then
  export NO_COLOR=1 ANSIBLE_NOCOLOR=1 # plain logs when not on a terminal (CI)
fi

if [ "$#" -gt 0 ]; then
  scenarios=("$@")
else
  scenarios=()
  for file in extensions/molecule/*/molecule.yml; do
    scenarios+=("$(basename "$(dirname "$file")")")
  done
fi
if [ "${#scenarios[@]}" -eq 0 ]; then
  echo "molecule.sh: no scenario found under extensions/molecule/" >&2
  exit 1
fi

failed=()
summary=()
for name in "${scenarios[@]}"; do
  if [ ! -f "extensions/molecule/$name/molecule.yml" ]; then
    echo "molecule.sh: no scenario $name (extensions/molecule/$name/molecule.yml)" >&2
    failed+=("$name")
    continue
  fi
  printf '\n---- molecule test -s %s ----\n' "$name"
  start=$SECONDS
  # One ephemeral directory per scenario inside this checkout: runs from other checkouts (whose
  # directory may also be called "main") never share molecule's state or a lab.
  if MOLECULE_EPHEMERAL_DIRECTORY="$REPO/.cache/molecule/$name" molecule test -s "$name"; then
    summary+=("$(printf '%-24s passed in %ds' "$name" $((SECONDS - start)))")
  else
    summary+=("$(printf '%-24s FAILED after %ds' "$name" $((SECONDS - start)))")
    failed+=("$name")
  fi
done

printf '\n---- molecule scenarios ----\n'
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "molecule.sh: failed: ${failed[*]}" >&2
  exit 1
fi
