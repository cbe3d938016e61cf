#!/usr/bin/env bash
# What a lottery needs on the GPU machine that its image lacks: Ray (default and train extras),
# MLflow and submitit at the versions of .venv, with their dependencies (pinned to .venv's where
# shared), as wheels for CPython 3.12 on manylinux x86_64. bench/gpu/wheelset.py sorts them:
# the projects the image lacks travel; of those it holds (KINDS.md's list, 2026-11-17), the
# small ones travel as spares, installed there only where the image's version fails a
# requirement; the rest are left to the image, unless its known version fails one. Those that
# travel go into one tar with their sha256 sums, cut into parts of at most $PART_MIB MiB (45: a
# part, the FFCV bundle and the working tree fit in one call's 64 MiB), one folder a part, to
# carry one a call:
#
#   OUT/part1/stack.tar.00, OUT/part2/stack.tar.01, ...  what travels, each part with MANIFEST
#   OUT/all/  every wheel resolved;  OUT/wheels/, OUT/spares/, OUT/SHA256SUMS  what the tar holds
#   OUT/dropped.txt  the image's projects left out or spare, with what asks for each
#
# Before it ends, the parts are joined again here and every wheel checked against its sum.
# bench/gpu/install-stack.sh installs them there. Usage: bash bench/gpu/stack.sh [OUT]
set -euo pipefail
out=${1:-build/gpu-stack}
part_mib=${PART_MIB:-45}
venv=${VENV:-.venv}
version() { "$venv/bin/python" -c "import importlib.metadata as m; print(m.version('$1'))"; }
roots=("ray[default,train]==$(version ray)" "mlflow==$(version mlflow)"
    "submitit==$(version submitit)")

# a Python 3.12 here evaluates the requirements' markers as the image's will; else .venv's
# pip, whose markers are 3.11's (only --python-version and --platform are 3.12's then)
python312=${PYTHON312:-}
if [[ -z $python312 ]]; then
    for candidate in python3.12 "$HOME"/.pyenv/versions/3.12*/bin/python3.12; do
        if "$candidate" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null; then
            python312=$candidate
            break
        fi
    done
fi
pip=("${python312:-$venv/bin/python}" -m pip)
target=(--only-binary :all: --python-version 3.12 --implementation cp --abi cp312
    --platform manylinux_2_34_x86_64 --platform manylinux_2_31_x86_64
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
    --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64)

rm -rf "$out"
mkdir -p "$out/all"
# the versions .venv was tested with, where a dependency is shared (the project itself aside)
"$venv/bin/pip" freeze --exclude-editable | grep -v '^#' > "$out/constraints.txt"
echo "resolving ${roots[*]} for CPython 3.12 with ${pip[0]}"
"${pip[@]}" download -q "${target[@]}" -c "$out/constraints.txt" -d "$out/all" "${roots[@]}" \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2)

"$venv/bin/python" bench/gpu/wheelset.py plan "$out" "${roots[@]}"
(cd "$out" && sha256sum -- wheels/*.whl spares/*.whl > SHA256SUMS)
tar -cf "$out/stack.tar" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
    -C "$out" SHA256SUMS wheels spares
split -b "${part_mib}M" -d -a 2 "$out/stack.tar" "$out/stack.tar."
pieces=("$out"/stack.tar.[0-9][0-9])
if ((${#pieces[@]} > 9)); then echo "more than 9 parts: raise PART_MIB" >&2; exit 1; fi
sum=$(sha256sum "$out/stack.tar" | cut -d' ' -f1)
for i in "${!pieces[@]}"; do
    part="$out/part$((i + 1))"
    mkdir -p "$part"
    mv "${pieces[$i]}" "$part/"
    printf 'parts %d\nstack.tar %s\nroots %s\n' "${#pieces[@]}" "$sum" "${roots[*]}" \
        > "$part/MANIFEST"
done

# the round trip, here as there: the parts joined give the tar, the tar the wheels byte for byte
check=$(mktemp -d)
cat "$out"/part[1-9]/stack.tar.[0-9][0-9] > "$check/stack.tar"
echo "$sum  $check/stack.tar" | sha256sum -c --quiet
tar -xf "$check/stack.tar" -C "$check"
(cd "$check" && sha256sum -c --quiet SHA256SUMS)
cmp "$out/SHA256SUMS" "$check/SHA256SUMS"
rm -rf "$check" "$out/stack.tar"
echo "round trip checked: $(wc -l < "$out/SHA256SUMS") wheels, byte for byte"
for part in "$out"/part[1-9]; do
    bytes=$(du -cb "$part" | tail -1 | cut -f1)
    echo "$part: $bytes bytes ($(awk "BEGIN {printf \"%.1f\", $bytes / 1048576}") MiB)"
done
