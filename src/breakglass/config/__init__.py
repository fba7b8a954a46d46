"""Configuration: YAML files loaded into strict pydantic models, with located errors and secrets."""

from breakglass.config.deployment import ContractRecord, Deployment
from breakglass.config.loader import LoadedConfig, inspect_config, load_config
from breakglass.config.models import Settings

__all__ = ["ContractRecord", "Deployment", "LoadedConfig", "Settings", "inspect_config", "load_config"]
