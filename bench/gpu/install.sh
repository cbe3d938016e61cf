#!/usr/bin/env bash
# On a machine without a package registry: unpack the bundle's Debian packages into a private
# prefix (dpkg -x, never over /), answer FFCV's pkg-config questions from it with a small shim,
# build FFCV with those libraries on its run path, and install it and the bundle's wheels for
# this Python, without touching the network. Usage: bash install.sh BUNDLE [PREFIX] [PYTHON]
set -euo pipefail
bundle=$(cd "$1" && pwd)
prefix=$(mkdir -p "${2:-$bundle/prefix}" && cd "${2:-$bundle/prefix}" && pwd)
python=${3:-python3}
for deb in "$bundle"/debs/*.deb; do dpkg -x "$deb" "$prefix"; done
lib="$prefix/usr/lib/x86_64-linux-gnu"
# opencv2/opencv.hpp includes every module Debian built; only core and imgproc are here
cat > "$prefix/usr/include/opencv4/opencv2/opencv_modules.hpp" <<'MODULES'
#define HAVE_OPENCV_CORE
#define HAVE_OPENCV_IMGPROC
MODULES
mkdir -p "$prefix/bin"
cat > "$prefix/bin/pkg-config" <<SHIM
#!/bin/sh
# only what FFCV's setup.py asks: --cflags --libs opencv4 | libturbojpeg
case "\$*" in
  *opencv4*) echo "-I$prefix/usr/include/opencv4 -L$lib -lopencv_imgproc -lopencv_core" ;;
  *libturbojpeg*) echo "-I$prefix/usr/include -L$lib -lturbojpeg" ;;
  *) echo "pkg-config shim: \$* not found"; exit 1 ;;
esac
SHIM
chmod +x "$prefix/bin/pkg-config"
"$python" -m pip install -q --no-deps --no-index "$bundle"/wheels/*.whl
rpath="-Wl,--disable-new-dtags -Wl,-rpath,$lib -Wl,-rpath,$lib/blas -Wl,-rpath,$lib/lapack"  # RPATH: for the libraries those load too
PATH="$prefix/bin:$PATH" LDFLAGS="$rpath" "$python" -m pip install -q --no-deps \
    --no-index --no-build-isolation "$bundle"/ffcv-*.tar.gz
"$python" -c "import ffcv.libffcv, ffcv.loader; print('ffcv', ffcv.__version__, 'built against', '$lib')"
