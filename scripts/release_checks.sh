#!/usr/bin/env bash
# Release checks, on what would be published:
#   1. ansible-galaxy collection build: the tarball holds only the collection (an allow-list of
#      top-level entries; no caches, venvs, lab image, tests, benchmarks output)
#   2. galaxy-importer on the tarball (as Galaxy imports it; ansible-test off: it needs a container)
#   3. antsibull-docs lint-collection-docs --plugin-docs on the collection
#   4. changelog: antsibull-changelog lint; CHANGELOG.rst is what `generate` makes of changelog.yaml;
#      `antsibull-changelog release` works on a copy with the pending fragments
#   5. execution environment: ansible-builder create with a definition that installs the tarball;
#      ansible-builder introspect on the installed collection yields its requirements.txt and bindep.txt
# The tools live in .cache/release-venv (requirements-release.txt, scripts/release_venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
RV=$(bash scripts/release_venv.sh)
export PATH="$RV/bin:$PATH"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

step() { printf -- '--> %s\n' "$*"; }
fail() { printf 'release_checks: FAIL: %s\n' "$*" >&2; exit 1; }

# Files git knows (tracked, or new and not ignored): what a release is made from.
git_files_to() {
  mkdir -p "$1"
  git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do if [ -e "$f" ]; then printf '%s\0' "$f"; fi; done \
    | tar --null -cf - -T - | tar -xf - -C "$1"
}

version=$("$RV/bin/python" -c 'import yaml; print(yaml.safe_load(open("galaxy.yml"))["version"])')
tarball=$WORK/hyperv-integration-$version.tar.gz

step "ansible-galaxy collection build (from the working tree, caches and all: build_ignore must hold)"
ansible-galaxy collection build --output-path "$WORK" . >/dev/null
[ -f "$tarball" ] || fail "no $tarball"
tar -tzf "$tarball" | sort >"$WORK/contents.txt"
allowed='^(MANIFEST\.json|FILES\.json|README\.md|LICENSE|CHANGELOG\.rst|requirements\.txt|bindep\.txt|(changelogs|docs|examples|meta|plugins|roles)(/.*)?)$'
if grep -v -E "$allowed" "$WORK/contents.txt" >"$WORK/unexpected.txt"; then
  cat "$WORK/unexpected.txt" >&2; fail "unexpected files in the tarball (galaxy.yml build_ignore)"
fi
if grep -E '(^|/)(__pycache__|\.cache|\.venv|\.pytest_cache|\.ruff_cache|\.hypothesis|\.ansible|build)(/|$)|\.pyc$|\.tar\.gz$' \
  "$WORK/contents.txt"; then fail "caches or build output in the tarball"; fi
for f in MANIFEST.json README.md LICENSE CHANGELOG.rst requirements.txt bindep.txt meta/runtime.yml \
  meta/execution-environment.yml plugins/modules/vm_integration_service.py roles/integration_services/tasks/main.yml \
  examples/README.md; do
  grep -qx "$f" "$WORK/contents.txt" || fail "$f missing from the tarball"
done
echo "    $(wc -l <"$WORK/contents.txt") entries, $(du -k "$tarball" | cut -f1) kB, top level: $(cut -d/ -f1 "$WORK/contents.txt" | sort -u | tr '\n' ' ')"

step "galaxy-importer $(pip show galaxy-importer 2>/dev/null | sed -n 's/^Version: //p') on the tarball"
cat >"$WORK/galaxy-importer.cfg" <<'CFG'
[galaxy-importer]
LOG_LEVEL_MAIN = INFO
RUN_ANSIBLE_TEST = False
RUN_ANSIBLE_DOC = True
RUN_ANSIBLE_LINT = True
OFFLINE_ANSIBLE_LINT = True
RUN_FLAKE8 = False
CHECK_CHANGELOG = True
REQUIRE_V1_OR_GREATER = False
CFG
(cd "$WORK" && GALAXY_IMPORTER_CONFIG="$WORK/galaxy-importer.cfg" "$RV/bin/python" -m galaxy_importer.main "$tarball") \
  >"$WORK/importer.log" 2>&1 || { cat "$WORK/importer.log" >&2; fail "galaxy-importer"; }
if grep -E 'WARNING|ERROR' "$WORK/importer.log"; then fail "galaxy-importer reported warnings"; fi
grep -q 'Importer processing completed successfully' "$WORK/importer.log" || { cat "$WORK/importer.log" >&2; fail "galaxy-importer"; }
echo "    $(tail -1 "$WORK/importer.log")"

step "antsibull-docs lint-collection-docs --plugin-docs"
tree=$WORK/tree/ansible_collections/hyperv/integration
git_files_to "$tree"
(cd "$tree" && antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs dependent \
  --disallow-unknown-collection-refs --check-extra-docs-refs .) || fail "antsibull-docs lint-collection-docs"
echo "    clean"

step "changelog (antsibull-changelog): lint, CHANGELOG.rst current, release works on a copy"
antsibull-changelog lint || fail "antsibull-changelog lint"
(cd "$tree" && git init -q . && antsibull-changelog generate >/dev/null)
cmp -s "$tree/CHANGELOG.rst" CHANGELOG.rst || { diff -u CHANGELOG.rst "$tree/CHANGELOG.rst" >&2 || true;
  fail "CHANGELOG.rst is not what 'antsibull-changelog generate' makes of changelogs/changelog.yaml"; }
next=$("$RV/bin/python" -c 'import sys; m,n,p=map(int,sys.argv[1].split(".")); print("%d.%d.0" % (m, n+1))' "$version")
(cd "$tree" && antsibull-changelog release --version "$next" --date 2000-01-01 >/dev/null 2>&1) \
  || fail "antsibull-changelog release --version $next"
pending=$(find changelogs/fragments -name '*.yml' | wc -l)
[ -z "$(find "$tree/changelogs/fragments" -name '*.yml')" ] || fail "release kept fragments"
grep -q "^v$next" "$tree/CHANGELOG.rst" || fail "no v$next section after release"
echo "    lint clean, CHANGELOG.rst current, release $next of $pending pending fragments works"

step "execution environment: ansible-builder create, introspect of the installed collection"
ANSIBLE_COLLECTIONS_PATH="$WORK/ee-collections" ansible-galaxy collection install -p "$WORK/ee-collections" "$tarball" >/dev/null
introspect=$(ansible-builder introspect --sanitize "$WORK/ee-collections")
"$RV/bin/python" - "$introspect" <<'PY' || fail "introspect does not yield the collection's requirements"
import sys, yaml
data = yaml.safe_load(sys.argv[1])
python = [line.split("#")[0].strip() for line in data["python"]]
system = [line.split("#")[0].strip() for line in data["system"]]
want_py = [l.strip() for l in open("requirements.txt") if l.strip() and not l.startswith("#") and not l.startswith("ansible-core")]
want_sys = [l.strip() for l in open("bindep.txt") if l.strip() and not l.startswith("#")]
assert sorted(python) == sorted(want_py), (python, want_py)
assert sorted(system) == sorted(set(want_sys)), (system, want_sys)
print("    introspect: python %s; system %d entries" % (", ".join(python), len(system)))
PY
"$RV/bin/python" - "$tarball" "$WORK/ee.yml" <<'PY'
import sys, yaml
ee = yaml.safe_load(open("docs/execution-environment.yml"))
ee["dependencies"]["galaxy"] = {"collections": [{"name": sys.argv[1], "type": "file"}]}
yaml.safe_dump(ee, open(sys.argv[2], "w"))
PY
ansible-builder create -f "$WORK/ee.yml" -c "$WORK/context" --output-filename Containerfile >"$WORK/builder.log" 2>&1 \
  || { cat "$WORK/builder.log" >&2; fail "ansible-builder create"; }
[ -f "$WORK/context/Containerfile" ] || fail "no Containerfile in the build context"
grep -q "hyperv-integration-$version.tar.gz" "$WORK/context/_build/requirements.yml" \
  || fail "the build context does not install the collection"
grep -q 'introspect' "$WORK/context/Containerfile" || fail "the Containerfile does not introspect collections"
echo "    $(tail -1 "$WORK/builder.log")"
echo "release checks passed"
