"""Configuration: YAML files loaded into strict pydantic models, with located errors and secrets."""

from breakglass.config.loader import LoadedConfig, load_config
from breakglass.config.models import Settings

__all__ = ["LoadedConfig", "Settings", "load_config"]
