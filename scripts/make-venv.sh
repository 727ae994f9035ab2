#!/usr/bin/env bash
# Make the project's virtual environment (.venv): its dependencies, and the project installed
# editable.
#   usage: scripts/make-venv.sh PYTHON [VENV]
#
# A new clone (as CI makes for every run) copies the dependencies from a template kept on the machine,
# /var/cache/warmline/venv/<key>, instead of installing them again: pip spent 20 s of wall time on
# them in every fresh clone, and their first import compiled them again (5 s more). The key is a
# hash of pyproject.toml, RECIPE below, the Python and the machine, so a changed dependency makes a
# new template; the template is built once, under a lock, and compiled once. The copy is made of
# hard links (0.4 s against 2.5 s for 700 MB): nothing writes into an installed file in place (pip
# and Python replace files by rename), so the template stays as built; where the clone is on another
# file system than /var/cache, it is a plain copy. Where /var/cache/warmline cannot be written, or
# the clone already has a .venv, the environment is built in place as before.
set -euo pipefail
cd "$(dirname "$0")/.."
python=$1
venv=${2:-.venv}
cache=/var/cache/warmline/venv
RECIPE=1  # how a template is built (build_template): a change to it must make new templates

in_place() {
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip
    # --no-compile: a module is compiled when first imported; compiling every installed file up front
    # doubled pip's CPU time (12 s against 25 s, measured).
    "$venv/bin/pip" install -q --no-compile -e '.[dev]'
}

# The dependencies as pyproject.toml lists them (markers and all), the project itself left out.
requirements() {
    "$python" - <<'EOF'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["dependencies"] + project["optional-dependencies"]["dev"]))
EOF
}

build_template() {
    local template=$1
    rm -rf "$template"
    "$python" -m venv "$template"
    "$template/bin/pip" install -q --upgrade pip
    "$template/bin/pip" install -q --no-compile -r <(requirements)
    # Compiled once here, so no clone compiles them (a few files in packages' test data do not compile).
    "$template/bin/python" -m compileall -q -j 0 "$template/lib" >/dev/null 2>&1 || true
    touch "$template/.complete"
}

# Scripts and activation files name the environment's own path: make them name the copy's.
repoint() {
    local template=$1 target=$2 file
    for file in "$target"/bin/* "$target/pyvenv.cfg"; do
        [ -f "$file" ] && [ ! -L "$file" ] || continue
        grep -Iq -F "$template" "$file" 2>/dev/null || continue
        sed -i "s#$template#$target#g" "$file"
    done
}

if [ -e "$venv" ] || ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
    in_place
    exit 0
fi
key=$({ cat pyproject.toml; echo "recipe $RECIPE"; "$python" -VV; uname -m; } | sha256sum | cut -c1-16)
template=$cache/$key
exec 9>"$template.lock"
flock 9
[ -e "$template/.complete" ] || build_template "$template"
cp -al "$template" "$venv" 2>/dev/null || { rm -rf "$venv"; cp -a "$template" "$venv"; }
rm -f "$venv/.complete"
repoint "$template" "$(cd "$venv" && pwd)"
"$venv/bin/pip" install -q --no-deps --no-compile -e .
