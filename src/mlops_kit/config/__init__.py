"""The typed project config and its loader."""

from mlops_kit.config.loader import ConfigError, LoadedConfig, deep_merge, load_config
from mlops_kit.config.model import ProjectConfig

__all__ = ["ConfigError", "LoadedConfig", "ProjectConfig", "deep_merge", "load_config"]
