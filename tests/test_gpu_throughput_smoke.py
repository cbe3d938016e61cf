"""bench/gpu_throughput.py's CPU smoke run: the GPU benchmark's whole path (real JPEG photos
written to .beton, the training loader, dense and masked steps) runs, on a tiny setting."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration]  # the script, run as a user runs it


def test_the_gpu_throughput_benchmark_runs_end_to_end_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    arguments = ["--device", "cpu", "--model", "resnet18", "--resolutions", "32", "--batch", "8",
                 "--images", "64", "--steps", "2", "--compile", "off", "--threads", "1",
                 "--out", str(out)]  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_throughput.py"), *arguments],
        capture_output=True, text=True, timeout=600,  # a hang guard, not a speed check
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [(row["masked"], row["compiled"]) for row in rows] == [(False, False), (True, False)]
    assert all(row["images_per_second"] > 0 and row["resolution"] == 32 for row in rows)
