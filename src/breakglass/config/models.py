"""The root of a breakglass configuration file and its small general sections.

Each stage owns the section models of its own keys (``monitors.py``, ...); this file assembles them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from breakglass.config.alerting import AlertingConfig, NotificationsConfig
from breakglass.config.attack import AttackSimulationConfig
from breakglass.config.base import Strict
from breakglass.config.ha import HaConfig
from breakglass.config.intel import IntelConfig
from breakglass.config.mempool import MempoolConfig
from breakglass.config.monitors import MonitorConfig
from breakglass.config.playbooks import (
    GuardianKeyConfig,
    PlaybookConfig,
    PolicyConfig,
    ResponderConfig,
    SafeConfig,
)
from breakglass.config.refs import RefTo, UniqueKey

__all__ = [
    "ApiConfig",
    "BusConfig",
    "ChainConfig",
    "ChainEntry",
    "ContractConfig",
    "DeploymentConfig",
    "LoggingConfig",
    "Settings",
    "StoreConfig",
]

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class ChainConfig(Strict):
    name: str = "devnet"
    chain_id: int | None = Field(default=None, ge=1)
    rpc: list[SecretStr] = Field(
        default_factory=list,
        description="HTTP(S) JSON-RPC endpoints in failover order; empty means the manifest's URL. "
        "Secret, because provider URLs usually embed an API key.",
    )
    ws: SecretStr | None = None
    confirmations: int = Field(default=0, ge=0, le=128)
    poll_interval: float = Field(default=0.5, gt=0, le=60)
    request_timeout: float = Field(default=10.0, gt=0, le=300)
    multicall: str | None = Field(
        default=None,
        pattern=_ADDRESS,
        description="a Multicall3 (aggregate3) contract, e.g. 0xcA11bde05977b3631167028862bE2a173976CA11 "
        "on most chains: a backfill reads each past block's state in one eth_call through it",
    )
    backfill_worker: bool = Field(
        default=False,
        description="a backfill's blocks beyond the state horizon are decoded and run through the "
        "event, call and transaction monitors in a second process, while this one fetches the next "
        "(off by default: on an idle 2-core machine it was slower than one process, docs/detection.md)",
    )

    @field_validator("rpc")
    @classmethod
    def _urls(cls, value: list[SecretStr]) -> list[SecretStr]:
        for secret in value:
            url = secret.get_secret_value()
            if not url.startswith(("http://", "https://")):
                raise ValueError("each rpc endpoint must start with http:// or https://")
        return value


class ChainEntry(ChainConfig):
    """One chain of a configuration that protects several (``chains:``, ``config/chains.py``): the
    settings of ``chain:`` plus its name, its required id and, optionally, its own guardian key."""

    name: Annotated[str, UniqueKey("chain"), Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    chain_id: int = Field(ge=1, description="required: what the node must answer, and each finding says")
    guardian: GuardianKeyConfig | None = Field(
        default=None,
        description="this chain's guardian key; unset: responder.guardian (one key may serve several "
        "chains: nonces are per chain)",
    )


class DeploymentConfig(Strict):
    """Where the protocol's contracts come from (``config/deployment.py``). A plain string is a manifest."""

    manifest: str | None = Field(
        default=None, description="a deployment manifest (JSON), relative to the configuration file"
    )
    artifacts: list[str] = Field(
        default_factory=list,
        description="Foundry out/ or Hardhat artifacts/ folders: ABIs by name for contracts[].artifact",
    )
    deployer: str | None = Field(
        default=None,
        pattern=_ADDRESS,
        description="the account that deployed the protocol: its privileged changes up to "
        "deployment_block are the deployment's own set-up (overrides the manifest's)",
    )
    deployment_block: int | None = Field(default=None, ge=0, description="the last block of the deployment")

    @field_validator("artifacts", mode="before")
    @classmethod
    def _one_folder(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class ContractConfig(Strict):
    """A contract by address, with its ABI from a JSON file or from the deployment's artifacts."""

    name: Annotated[str, UniqueKey("contract")]
    address: str = Field(pattern=_ADDRESS)
    chain: Annotated[str | None, RefTo("chain")] = Field(
        default=None, description="the chain it is deployed on (a name in 'chains'; optional with one chain)"
    )
    abi: str | None = Field(
        default=None, description="path to a JSON ABI (or artifact) file, relative to the configuration file"
    )
    artifact: str | None = Field(
        default=None,
        description="a contract name in deployment.artifacts (Vault, or src/Vault.sol:Vault when ambiguous)",
    )

    @model_validator(mode="after")
    def _one_abi(self) -> ContractConfig:
        if (self.abi is None) == (self.artifact is None):
            raise ValueError(
                "set exactly one of 'abi' (a JSON file) and 'artifact' (a name in deployment.artifacts)"
            )
        return self


class StoreConfig(Strict):
    url: str = Field(
        default="sqlite:///.breakglass/breakglass.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db",
    )
    journal: str | None = Field(
        default=None,
        description="folder of the response ledger's journal, where claims are kept while the store "
        "is locked or down (relative to this file; default: beside a SQLite file, else .breakglass/ "
        "next to this file). Put it on persistent storage: docs/reliability.md",
    )


class BusConfig(Strict):
    """How stages talk: in one process (default), or through NATS JetStream across machines."""

    kind: Literal["memory", "jetstream"] = "memory"
    url: SecretStr | None = Field(default=None, description="nats://host:4222 (may embed credentials)")
    prefix: str = Field(default="breakglass", pattern=r"^[A-Za-z0-9_-]+$", description="stream name")

    @model_validator(mode="after")
    def _url_for_jetstream(self) -> BusConfig:
        if self.kind == "jetstream" and self.url is None:
            raise ValueError("bus.kind 'jetstream' needs bus.url (e.g. nats://127.0.0.1:4222)")
        return self


class ApiConfig(Strict):
    """``breakglass serve``'s HTTP side (its command-line flags win over these)."""

    host: str = Field(default="127.0.0.1", description="listen address; put a TLS proxy in front for others")
    port: int = Field(default=8080, ge=1, le=65535)
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses (or CIDR ranges) of the proxies trusted for X-Forwarded-Proto/-For",
    )
    session_secret: SecretStr | None = Field(
        default=None,
        description="signs dashboard cookies (32+ characters), e.g. '${BREAKGLASS_SESSION_SECRET}'; "
        "unset: BREAKGLASS_SESSION_SECRET, else a random secret (sessions end on restart)",
    )

    @field_validator("session_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("api.session_secret must be at least 32 characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR range") from None
        return value


class LoggingConfig(Strict):
    level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")
    json_format: bool = Field(default=False, alias="json")


class Settings(Strict):
    """A whole breakglass configuration file."""

    version: int = Field(default=1, ge=1, le=1)
    protocol: str = Field(default="protocol", pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    chain: ChainConfig = Field(default_factory=ChainConfig)
    chains: list[ChainEntry] = Field(
        default_factory=list,
        description="several chains in one deployment (instead of 'chain'): each with its name, id, "
        "endpoints and guardian; contracts say their chain",
    )
    deployment: DeploymentConfig | None = Field(
        default=None,
        description="where the contracts come from: a manifest path, or manifest/artifacts/deployer "
        "(relative paths are resolved against the configuration file)",
    )
    contracts: list[ContractConfig] = Field(default_factory=list)
    monitors: list[MonitorConfig] = Field(default_factory=list)
    store: StoreConfig = Field(default_factory=StoreConfig)
    bus: BusConfig = Field(default_factory=BusConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    playbooks: list[PlaybookConfig] = Field(default_factory=list)
    responder: ResponderConfig = Field(default_factory=ResponderConfig)
    safes: list[SafeConfig] = Field(default_factory=list)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    mempool: MempoolConfig = Field(default_factory=MempoolConfig)
    attack_simulation: AttackSimulationConfig = Field(default_factory=AttackSimulationConfig)
    api: ApiConfig = Field(default_factory=ApiConfig)
    intel: IntelConfig = Field(default_factory=IntelConfig)
    ha: HaConfig = Field(default_factory=HaConfig)

    @model_validator(mode="after")
    def _lease_server(self) -> Settings:
        ha = self.ha
        server: str | None = None
        if ha.lease == "nats":
            server = self.bus.url.get_secret_value() if self.bus.url is not None else None
            if ha.url is None and self.bus.kind != "jetstream":
                raise ValueError(
                    "ha.lease 'nats' needs a NATS server: set ha.url (nats://host:4222) or bus.kind jetstream"
                )
            if ha.url is not None and not ha.url.get_secret_value().startswith(("nats://", "tls://")):
                raise ValueError("ha.url must be a nats:// (or tls://) URL for ha.lease 'nats'")
        if ha.lease == "postgres":
            server = self.store.url
            url = ha.url.get_secret_value() if ha.url is not None else server
            if not url.startswith(("postgresql", "postgres")):
                raise ValueError(
                    "ha.lease 'postgres' needs a PostgreSQL server: set ha.url "
                    "(postgresql://user@host/db) or a PostgreSQL store.url"
                )
        ha.resolve(server=server, prefix=self.bus.prefix)
        return self

    @field_validator("deployment", mode="before")
    @classmethod
    def _manifest_path(cls, value: Any) -> Any:
        return {"manifest": value} if isinstance(value, str) else value
