"""MLflow's system metrics (CPU, memory, disk, network and, with NVML, GPU use) on the runs
that train in this process, and whether a config asks for them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scale_lth.config import Config

if TYPE_CHECKING:
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor


def watches_system(config: Config) -> bool:
    """``tracking.system_metrics``: true, false, or (none) where runs use GPUs."""
    setting = config.tracking.system_metrics
    return config.scaling.use_gpu if setting is None else setting


def system_monitor(run_id: str, uri: str) -> SystemMetricsMonitor:
    """MLflow's sampler, started on the run; it logs ``system/...`` metrics every 10 s
    (MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL)."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    logging.getLogger("mlflow.system_metrics").setLevel(logging.WARNING)  # a line per run else
    monitor = SystemMetricsMonitor(run_id, sampling_interval=10, tracking_uri=uri)
    monitor.start()
    return monitor
