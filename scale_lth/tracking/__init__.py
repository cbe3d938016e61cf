"""Experiment tracking in MLflow, in parts: ``uri`` (where runs are stored), ``experiment``
(the MLflow experiment, made on the driver), ``runs`` (runs found by their tags), ``names``
(what the runs table calls them), ``params``, ``system_metrics``, ``outbox`` (events kept on
disk until sent), ``writer`` (events -> MLflow calls), ``tracker`` (the observer that sends
them), ``reports`` (the report's summary and curve runs, comparisons) and ``ui``."""

import os

# MLflow's settings for every client of this package. They sit here because Python runs a
# package's __init__ before any of its modules, so they hold before any part makes a client
# (every MLflow call of scale_lth is in scale_lth.tracking); a value the user set wins.
# MLflow 3 reports usage over the network on every client call (~10 ms each here, and these
# machines have no internet): off unless the user has set it.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# A tracking server that went away must not hold a call for minutes of retries: the events
# wait in the outbox and are sent again later anyway: two retries, the second 2 s after the
# first (urllib3 backs off by the factor x 2^(retry-1); MLflow's defaults are 7 retries and a
# factor of 2, up to minutes for a call).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
