"""Service settings, from ``RISKENGINE_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_KEY = "riskengine-development-key-not-secret"


class Settings(BaseSettings):
    """Everything the service reads from its environment.

    Outside development mode the pseudonymization key is mandatory: a service that
    silently used a published default key would store identifiers that anyone can
    reverse by enumeration.
    """

    model_config = SettingsConfigDict(env_prefix="RISKENGINE_", env_file=".env", extra="ignore")

    env: Literal["development", "production", "test"] = "production"
    store: str = "sqlite:riskengine.db"
    rules: Path | None = Field(default=None, description="Ruleset YAML; the shipped one if unset")
    model: Path | None = Field(default=None, description="Model artifact; the shipped one if unset")
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None
    pseudonym_key_id: str = "k1"
    ipdata_city_mmdb: Path | None = Field(
        default=None, description="An operator's MaxMind-format city database"
    )
    ipdata_asn_mmdb: Path | None = None
    ipdata_cache_dir: Path | None = None
    failover_decision: Literal["challenge", "deny"] = "challenge"
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _key_required_outside_development(self) -> Settings:
        if self.env == "production" and self.pseudonym_key is None and not self.pseudonym_key_file:
            raise ValueError(
                "RISKENGINE_PSEUDONYM_KEY or RISKENGINE_PSEUDONYM_KEY_FILE must be set "
                "(or RISKENGINE_ENV=development for a local trial with a public key)"
            )
        return self

    def key_bytes(self) -> bytes:
        """The pseudonymization key (the public development key only in development)."""
        if self.pseudonym_key_file is not None:
            return self.pseudonym_key_file.read_bytes().strip()
        if self.pseudonym_key is not None:
            return self.pseudonym_key.get_secret_value().encode()
        if self.env == "production":
            raise ValueError("no pseudonymization key configured")
        return DEV_KEY.encode()
