"""Shared fixtures: the digits data written once per test session, a small experiment config."""

from pathlib import Path

import pytest

from scale_lth.config import load
from scale_lth.data import sources, write_splits

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "digits"
    write_splits(sources.digits(), folder, source="digits")
    return folder


@pytest.fixture
def smoke_config(tmp_path, digits_dir):
    """configs/smoke.yaml with its data and results in temporary folders; more overrides
    may be passed."""

    def make(*overrides: str):
        return load(
            CONFIGS / "smoke.yaml",
            [f"data.path={digits_dir}", f"output_root={tmp_path / 'results'}", *overrides],
        )

    return make
