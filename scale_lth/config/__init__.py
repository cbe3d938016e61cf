"""Typed experiment configs: YAML + ``key.sub=value`` overrides, validated, hashed."""

from scale_lth.config.duration import Duration
from scale_lth.config.loading import ConfigError, load, load_saved
from scale_lth.config.schema import Config

__all__ = ["Config", "ConfigError", "Duration", "load", "load_saved"]
