"""The ``intel:`` section: signed threat intelligence shared between protocols (``docs/intel.md``).

Our side: the key that signs the bundles we export, and the name they carry. Their side: the sources
we pull (a bundle file or folder), whom we trust to have signed each, how much, for how long an
indicator lives, and how severe a match of it is on our protocol.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from breakglass.config.base import Strict
from breakglass.config.monitors import SeverityName
from breakglass.config.playbooks import GuardianKeyConfig
from breakglass.config.refs import UniqueKey

__all__ = ["IntelConfig", "IntelExportConfig", "IntelSourceConfig", "TaxiiCollectionConfig"]

_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


class TaxiiCollectionConfig(Strict):
    """A TAXII 2.1 collection holding a peer's signed objects."""

    url: SecretStr = Field(
        description="the collection's URL: https://host/api-root/collections/<id>/ (secret: it may embed "
        "credentials)"
    )
    user: str | None = Field(default=None, description="HTTP basic user, if the server asks for one")
    password: SecretStr | None = Field(default=None, description="e.g. '${PEER_TAXII_PASSWORD}'")
    token: SecretStr | None = Field(
        default=None,
        description="a bearer token instead: a peer's breakglass gives one with the role 'peer' "
        "(breakglass tokens create --role peer --name NAME), e.g. '${VENUE_A_TOKEN}'",
    )

    @model_validator(mode="after")
    def _one_credential(self) -> TaxiiCollectionConfig:
        if self.token is not None and (self.user is not None or self.password is not None):
            raise ValueError("set 'token' or 'user'/'password', not both")
        return self

    @field_validator("url")
    @classmethod
    def _http(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("a TAXII collection URL starts with https:// (or http:// on a private network)")
        return value


class IntelSourceConfig(Strict):
    """A peer's feed: where its bundles are, who may sign them, and what a match of one means here."""

    name: Annotated[str, UniqueKey("intel source"), Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    file: str | None = Field(
        default=None,
        description="a signed bundle (JSON) or a folder of them, relative to the configuration file",
    )
    taxii: TaxiiCollectionConfig | None = Field(default=None, description="or a TAXII 2.1 collection")
    signers: list[Annotated[str, Field(pattern=_ADDRESS)]] = Field(
        min_length=1, description="Ethereum addresses whose signature this source's bundles must carry"
    )
    confidence: int = Field(
        default=70, ge=0, le=100, description="STIX confidence we give this source's indicators (0-100)"
    )
    min_confidence: int = Field(
        default=0, ge=0, le=100, description="indicators the signer rated below this are not imported"
    )
    ttl_hours: float = Field(
        default=720.0,
        gt=0,
        le=87600,
        description="an indicator lives this long after its valid_from (or less, if its valid_until says so)",
    )
    severity: SeverityName = Field(default="high", description="severity of a match on our protocol")

    @model_validator(mode="after")
    def _one_place(self) -> IntelSourceConfig:
        if (self.file is None) == (self.taxii is None):
            raise ValueError("set exactly one of 'file' (a bundle or a folder) and 'taxii' (a collection)")
        return self


class IntelExportConfig(Strict):
    """Export each incident when it is confirmed, without anyone running ``breakglass intel export``."""

    folder: str = Field(
        description="where signed bundles are written, <incident>.json (relative to this file)"
    )
    when: Literal["triaged", "contained", "closed"] = Field(
        default="closed",
        description="the state that confirms an incident: 'closed' exports those closed as true "
        "positives only; 'triaged' as soon as a person acknowledges one; 'contained' once contained",
    )
    chain: bool = Field(default=True, description="complete the indicators from the node")
    collection: TaxiiCollectionConfig | None = Field(
        default=None, description="also publish each bundle to this TAXII 2.1 collection"
    )


class IntelConfig(Strict):
    signer: GuardianKeyConfig | None = Field(
        default=None,
        description="the key that signs exported bundles: 'keystore' (with 'password') or 'env'. "
        "Use a key of its own, never the guardian's: its address is what peers trust",
    )
    producer: str | None = Field(
        default=None, max_length=200, description="who we are in the bundles (default: the protocol name)"
    )
    store: str = Field(
        default=".breakglass/intel.json",
        description="where pulled, verified indicators are kept (relative to the configuration file); "
        "the intel monitors read it",
    )
    sources: list[IntelSourceConfig] = Field(default_factory=list)
    pull_minutes: float | None = Field(
        default=None,
        gt=0,
        le=10_080,
        description="serve pulls every source this often (unset: only `breakglass intel pull` does)",
    )
    export: IntelExportConfig | None = Field(
        default=None, description="export incidents as signed bundles when they are confirmed"
    )

    @model_validator(mode="after")
    def _local_key(self) -> IntelConfig:
        if self.signer is not None and (self.signer.remote is not None or self.signer.kms is not None):
            raise ValueError("intel.signer: use 'keystore' (with 'password') or 'env'")
        if self.export is not None and self.signer is None:
            raise ValueError("intel.export needs intel.signer: a bundle must be signed to be trusted")
        return self
