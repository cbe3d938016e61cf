#!/usr/bin/env bash
# What building FFCV needs on the GPU machine, which reaches no package registry: FFCV's sdist,
# tqdm, PyYAML, setuptools and wheel as wheels for Python 3.12, the Debian packages holding libturbojpeg and
# OpenCV's core and imgproc (headers and shared libraries, with the libraries those load), and
# scikit-learn's two sample photos. About 14 MB, written to build/ffcv-bundle (or $1); carry it
# with the device tool and run bench/gpu/install.sh there.
set -euo pipefail
out=${1:-build/ffcv-bundle}
pip=${PIP:-.venv/bin/pip}
mkdir -p "$out/debs" "$out/wheels" "$out/photos"
"$pip" download -q ffcv==1.0.2 --no-deps --no-binary :all: -d "$out"
"$pip" download -q tqdm pyyaml setuptools wheel --no-deps --only-binary :all: --python-version 3.12 \
    --platform manylinux2014_x86_64 -d "$out/wheels"
(cd "$out/debs" && apt-get download -q \
    libturbojpeg0 libturbojpeg0-dev \
    libopencv-core406 libopencv-core-dev libopencv-imgproc406 libopencv-imgproc-dev \
    libtbb12 libblas3 liblapack3 libgfortran5 libglx0 libglvnd0 libglx-mesa0 \
    libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0)
.venv/bin/python - "$out/photos" <<'PY'
import shutil, sys
from pathlib import Path
import sklearn.datasets
for photo in sorted((Path(sklearn.datasets.__file__).parent / "images").glob("*.jpg")):
    shutil.copy(photo, sys.argv[1])
PY
cp bench/gpu/install.sh "$out/"
du -sh "$out"
