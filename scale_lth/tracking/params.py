"""What MLflow params hold: the experiment's settings as the user set them, never where the
runs are stored or a credential, each value cut to the length MLflow takes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scale_lth.config import Config
from scale_lth.config.hashing import non_default_values
from scale_lth.tracking.uri import without_credentials

if TYPE_CHECKING:
    from mlflow.entities import Param

# Where the runs are stored is no parameter of the experiment, and the resolved URI may come
# from the environment (MLFLOW_TRACKING_URI) and carry credentials.
NOT_PARAMS = ("tracking.uri",)
MAX_PARAM_LENGTH = 6000  # MLflow's limit for a param value


def experiment_params(config: Config) -> dict[str, object]:
    """The config as MLflow params: every value the user set, with no credentials in them."""
    return {
        key: without_credentials(value)
        for key, value in config.flat().items()
        if key not in NOT_PARAMS
    }


def param_value(value: object) -> str:
    """``value`` as text MLflow takes (a long one cut, ending in ``...``)."""
    text = str(value)
    return text if len(text) <= MAX_PARAM_LENGTH else text[: MAX_PARAM_LENGTH - 3] + "..."


def run_params(config: Config) -> list[Param]:
    """The experiment's params as every run of it logs them."""
    from mlflow.entities import Param

    return [Param(key, param_value(value)) for key, value in experiment_params(config).items()]


def changed_settings(config: Config) -> dict[str, str]:
    """The settings that make this experiment differ from the defaults (``pruning.fraction``:
    the value), as MLflow takes them."""
    changed: dict[str, str] = {}

    def add(values: dict, prefix: str) -> None:
        for name, value in values.items():
            if isinstance(value, dict):
                add(value, f"{prefix}{name}.")
            else:
                changed[f"{prefix}{name}"] = param_value(without_credentials(value))

    add(non_default_values(config), "")
    return changed


def setting_tags(config: Config) -> dict[str, str]:
    """``changed_settings`` as tags (``config.pruning.fraction``), to tell curve runs of several
    experiments apart."""
    return {f"config.{name}": value for name, value in changed_settings(config).items()}
