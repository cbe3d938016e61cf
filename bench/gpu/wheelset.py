"""The wheels a lottery needs on the GPU machine, and their requirements against what a Python
holds there (bench/gpu/stack.sh runs ``plan`` here, bench/gpu/install-stack.sh ``choose`` and
``check`` there). Requirements are followed from the roots (``ray[default,train]==V``, ...),
extras included, with the markers of CPython 3.12 on Linux x86_64 (``plan``) or of the Python
that runs this (``choose``, ``check``).

    python wheelset.py plan OUT ROOT...   OUT/all's wheels: those of projects the image lacks to
        OUT/wheels; those it holds, to OUT/spares where small (carried in case the image's
        version fails a requirement), else left out; OUT/dropped.txt says which and what asks
    python wheelset.py choose STAGE ROOT...   prints the wheels to install: STAGE/wheels', and the
        spares of projects this Python lacks or holds at a version a requirement refuses
    python wheelset.py check ROOT...   every requirement reachable from the roots met by the
        distributions this Python finds (PYTHONPATH first); exit 1 naming those that are not
"""

from __future__ import annotations

import re
import shutil
import sys
import zipfile
from collections.abc import Callable
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

# KINDS.md of the device notes, "Python packages already there" (read 2026-11-17)
IMAGE = set(
    """absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx humanize hypothesis idna
    imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2
    joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite
    lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
    multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda
    numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
    nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
    nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13
    nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum
    opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip
    pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo
    pygments pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov
    pytest-mock pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex
    requests rich sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn
    sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
    statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl
    tifffile tiktoken timm tokenizers toolz torch torchaudio torchdiffeq torch-geometric
    torchmetrics torchvision tqdm transformers treescope triton typer typing-extensions
    typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl
    zipp""".split()
)
# the image's versions that KINDS.md gives (its pip list row); the others are not known here
KNOWN = {
    "numpy": "2.5.2",
    "onnx": "1.23.1",
    "onnx-ir": "1.0.0",
    "onnxruntime": "1.30.0",
    "onnxscript": "0.7.2",
    "torch": "2.11.0",
    "torchvision": "0.26.0",
    "triton": "3.6.0",
    "jax": "0.11.2",
    "jaxlib": "0.11.2",
    "safetensors": "0.8.0",
    "huggingface-hub": "1.33.0",
    "tokenizers": "0.23.2",
    "transformers": "5.17.0",
    "torchmetrics": "1.9.0",
    "accelerate": "1.15.0",
    "cupy-cuda13x": "14.2.0",
    "sentencepiece": "0.2.2",
}
PYTHON_312 = {
    **default_environment(),
    "python_version": "3.12",
    "python_full_version": "3.12.3",  # the image's
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
}
SPARE_MAX_BYTES = 2 * 1024 * 1024  # spares: the small wheels of what the image holds
ASKED = "(asked)"

Asks = dict[str, list[tuple[str, Requirement]]]  # project -> (who asks, requirement)


class Wheel:
    def __init__(self, path: Path):
        name, version, _, _ = parse_wheel_filename(path.name)
        self.path, self.name, self.version = path, canonicalize_name(name), str(version)
        with zipfile.ZipFile(path) as archive:
            found = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            text = archive.read(found[0]).decode()
        self.requires = [
            Requirement(r) for r in Parser().parsestr(text).get_all("Requires-Dist", [])
        ]


def wheels_in(folder: Path) -> dict[str, Wheel]:
    return {w.name: w for w in map(Wheel, sorted(folder.glob("*.whl")))}


def walk(
    roots: list[Requirement],
    requires_of: Callable[[str], list[Requirement] | None],
    environment: dict[str, str],
) -> Asks:
    """Who asks for which project, from ``roots`` down through each project whose requirements
    ``requires_of`` gives (None: not followed), each with the extras asked of it."""
    asks: Asks = {}
    todo: list[tuple[str, str]] = []
    for root in roots:
        name = canonicalize_name(root.name)
        asks.setdefault(name, []).append((ASKED, root))
        todo += [(name, extra) for extra in ("", *root.extras)]
    seen: set[tuple[str, str]] = set()
    while todo:
        name, extra = todo.pop()
        requires = requires_of(name)
        if (name, extra) in seen or requires is None:
            continue
        seen.add((name, extra))
        for requirement in requires:
            marker = requirement.marker
            if marker is not None and not marker.evaluate({**environment, "extra": extra}):
                continue
            other = canonicalize_name(requirement.name)
            asks.setdefault(other, []).append((f"{name}[{extra}]" if extra else name, requirement))
            todo += [(other, e) for e in ("", *requirement.extras)]
    return asks


def refused(version: str | None, asked: list[tuple[str, Requirement]]) -> list[str]:
    """The requirements of ``asked`` that ``version`` (None: not installed) does not meet."""
    return [
        f"{who} wants {req.specifier or 'it'}"
        for who, req in asked
        if version is None or not req.specifier.contains(version, prereleases=True)
    ]


def plan(out: Path, roots: list[Requirement]) -> None:
    wheels = wheels_in(out / "all")
    carried = {name for name in wheels if name not in IMAGE}
    while True:  # carry an image project whose known version a carried wheel refuses
        asks = walk(roots, lambda n: wheels[n].requires if n in wheels else None, PYTHON_312)
        asked_by_carried = {
            name: [(who, r) for who, r in asked if who == ASKED or who.split("[")[0] in carried]
            for name, asked in asks.items()
        }
        refusing = {
            name
            for name in wheels.keys() - carried
            if name in KNOWN and refused(KNOWN[name], asked_by_carried.get(name, []))
        }
        if not refusing:
            break
        carried |= refusing
    # spares: the small wheels of the image's projects that the carried wheels, or spares
    # themselves, reach (what the image's own big ones alone ask for stays behind)
    small = {n for n in wheels.keys() - carried if wheels[n].path.stat().st_size <= SPARE_MAX_BYTES}
    reach = walk(roots, lambda n: wheels[n].requires if n in carried | small else None, PYTHON_312)
    for folder in ("wheels", "spares"):
        (out / folder).mkdir(exist_ok=True)
    lines = []
    for name, wheel in sorted(wheels.items()):
        if name in carried:
            shutil.copy(wheel.path, out / "wheels")
            if name in IMAGE:
                lines.append(f"{name} {wheel.version}: CARRIED, image {KNOWN[name]} is refused")
            continue
        spare = name in small and name in reach
        if spare:
            shutil.copy(wheel.path, out / "spares")
        asked = asked_by_carried.get(name, [])
        wants = "; ".join(sorted({f"{who} {r.specifier or 'any'}" for who, r in asked}))
        lines.append(
            f"{name} (resolved {wheel.version}; image {KNOWN.get(name, 'version not listed')}; "
            f"{'spare' if spare else 'left to the image'}): {wants or 'asked by no carried wheel'}"
        )
    (out / "dropped.txt").write_text("\n".join(lines) + "\n")
    spares = len(list((out / "spares").glob("*.whl")))
    print(
        f"{len(carried)} wheels carried, {len(wheels) - len(carried)} of the image's projects "
        f"left out ({spares} of them carried as spares): {out / 'dropped.txt'}"
    )


def installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def choose(stage: Path, roots: list[Requirement]) -> None:
    wheels, spares = wheels_in(stage / "wheels"), wheels_in(stage / "spares")
    chosen = dict(wheels)
    problems: list[str] = []
    while True:
        environment = default_environment()
        asks = walk(roots, lambda n: chosen[n].requires if n in chosen else None, environment)
        added = False
        problems = []
        for name, asked in sorted(asks.items()):
            if name in chosen:
                continue
            wrong = refused(installed(name), asked)
            if not wrong:
                continue
            if name in spares and not refused(spares[name].version, asked):
                chosen[name] = spares[name]
                print(f"spare {name} {spares[name].version}: here {installed(name)}, "
                      f"{'; '.join(wrong)}", file=sys.stderr)  # fmt: skip
                added = True
            else:
                problems.append(f"{name} {installed(name)}: {'; '.join(wrong)}")
        if not added:
            break
    for problem in problems:
        print(f"unmet, no spare for it: {problem}", file=sys.stderr)
    print("\n".join(str(wheel.path) for wheel in chosen.values()))


def check(roots: list[Requirement]) -> int:
    def requires_of(name: str) -> list[Requirement] | None:
        try:
            return [Requirement(r) for r in metadata.requires(name) or []]
        except metadata.PackageNotFoundError:
            return None

    asks = walk(roots, requires_of, default_environment())
    unmet = {name: refused(installed(name), asked) for name, asked in sorted(asks.items())}
    unmet = {name: wrong for name, wrong in unmet.items() if wrong}
    for name, wrong in unmet.items():
        print(f"unmet: {name} {installed(name) or '(missing)'}: {'; '.join(wrong)}")
    print(f"{len(asks)} projects reachable from {len(roots)} roots, {len(unmet)} with unmet needs")
    return 1 if unmet else 0


def main(argv: list[str]) -> int:
    verb, rest = argv[0], argv[1:]
    if verb == "plan":
        plan(Path(rest[0]), [Requirement(r) for r in rest[1:]])
    elif verb == "choose":
        choose(Path(rest[0]), [Requirement(r) for r in rest[1:]])
    elif verb == "check":
        return check([Requirement(r) for r in rest])
    else:
        raise SystemExit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
