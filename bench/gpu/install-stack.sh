#!/usr/bin/env bash
# On the GPU machine, once every part of bench/gpu/stack.sh's wheel set has been copied into
# STAGE (each call carries one part and copies it there; files stay while the machine is warm):
# join the parts, check the tar and every wheel against their sha256 sums, install the carried
# wheels, and the spares whose project this Python lacks or holds at a version a requirement
# refuses, into SITE (never into the image's environment), then the project itself as an
# editable install (the `scale-lth` command beside python3; the repo root is the working
# folder). Prints the unmet requirements, if any, and the versions imported.
# Usage: bash bench/gpu/install-stack.sh [STAGE] [SITE] [PYTHON]; then PYTHONPATH=SITE.
set -euo pipefail
stage=${1:-/tmp/stage}
site=${2:-/tmp/site}
python=${3:-python3}
manifest="$stage/MANIFEST"
[[ -f $manifest ]] || { echo "no $manifest: no part has been staged" >&2; exit 1; }
parts=$(awk '$1 == "parts" {print $2}' "$manifest")
sum=$(awk '$1 == "stack.tar" {print $2}' "$manifest")
read -r -a roots <<< "$(sed -n 's/^roots //p' "$manifest")"
pieces=("$stage"/stack.tar.[0-9][0-9])
if [[ ${#pieces[@]} -ne $parts || ! -f ${pieces[0]} ]]; then
    echo "$stage holds ${#pieces[@]} of the $parts parts: stage the others first" >&2
    exit 1
fi
unpacked="$stage/unpacked"
rm -rf "$unpacked" && mkdir -p "$unpacked"
cat "${pieces[@]}" > "$stage/stack.tar"
echo "$sum  $stage/stack.tar" | sha256sum -c --quiet
tar -xf "$stage/stack.tar" -C "$unpacked" && rm "$stage/stack.tar"
(cd "$unpacked" && sha256sum -c --quiet SHA256SUMS)
echo "stack: $parts parts joined, $(wc -l < "$unpacked/SHA256SUMS") wheels match their sums"

here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$site"
mapfile -t chosen < <(env -u PYTHONPATH "$python" "$here/wheelset.py" choose "$unpacked" "${roots[@]}")
((${#chosen[@]})) || { echo "wheelset.py chose no wheel" >&2; exit 1; }
"$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
    "${chosen[@]}"
echo "stack: ${#chosen[@]} wheels installed into $site"
export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
if ! "$python" -m pip install -q --no-index --no-deps --no-build-isolation -e . 2>&1 | tail -3; then
    # no editable install: the command written by hand, the sources found on PYTHONPATH
    interpreter=$("$python" -c "import sys; print(sys.executable)")
    script=$(dirname "$interpreter")/scale-lth
    printf '#!%s\nimport sys\nfrom scale_lth.cli import console\nsys.exit(console())\n' \
        "$interpreter" > "$script" && chmod +x "$script"
    echo "project: no editable install; $script written (PYTHONPATH must name $PWD)"
fi
"$python" "$here/wheelset.py" check "${roots[@]}" || true
"$python" - <<'PY'
import mlflow
import ray
import submitit

import scale_lth

print(f"ray {ray.__version__}, mlflow {mlflow.__version__}, submitit {submitit.__version__}, "
      f"scale_lth from {scale_lth.__file__}")
PY
"$python" -m scale_lth --help > /dev/null && echo "python3 -m scale_lth answers"
