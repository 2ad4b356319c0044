"""Service settings, from ``RISKENGINE_*`` environment variables (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskengine.core.edge import TimePolicy
from riskengine.core.privacy import Pseudonymizer, parse_key_file

DEV_KEY = "riskengine-development-key-not-secret"
DEV_SIGNING_KEY = "riskengine-development-signing-key-not-secret"


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
    shadow_rules: Path | None = Field(
        default=None, description="A candidate ruleset run beside the live one, never enforced"
    )
    rules_watch_s: float = Field(
        default=2.0, ge=0, description="How often the ruleset files are checked for changes "
        "(0: only POST /v1/admin/rules/reload)"
    )
    backtest_report: Path = Field(
        default=Path("backtest-report.json"),
        description="The backtest JSON the tuning page shows (riskengine backtest --json)",
    )
    pseudonym_key: SecretStr | None = None
    pseudonym_key_file: Path | None = None
    pseudonym_key_id: str = "k1"
    ipdata_city_mmdb: Path | None = Field(
        default=None, description="An operator's MaxMind-format city database"
    )
    ipdata_asn_mmdb: Path | None = None
    ipdata_cache_dir: Path | None = None
    model_dir: Path | None = Field(
        default=Path("model-snapshots"),
        description="Where signed snapshots of the online model are kept; ACTIVE names the "
        "one to serve. Unset in test mode: tests never write snapshots unless they ask.",
    )
    model_signing_key: SecretStr | None = None
    snapshot_interval_s: float = Field(default=300.0, gt=0)
    decision_retention_days: float = Field(default=30.0, gt=0)
    profile_retention_days: float = Field(
        default=365.0, gt=0, description="A profile not updated for this long is deleted"
    )
    failover_decision: Literal["challenge", "deny"] = "challenge"
    # -- time: the server's clock decides (riskengine.core.edge.TimePolicy)
    timestamp_max_ahead_s: float = Field(
        default=300.0, ge=0, description="A login's timestamp may be at most this far ahead "
        "of the server's clock (clock skew); further is a 422 naming timestamp",
    )
    timestamp_max_age_s: float = Field(
        default=86_400.0, gt=0, description="A login's timestamp may be at most this old "
        "(late deliveries); older is a 422 naming timestamp",
    )
    trust_event_time: bool = Field(
        default=False, description="Run velocity windows and learning caps on the callers' "
        "timestamps, with no age limit: for replaying recorded traffic over HTTP only, as a "
        "caller could then move its own windows. A warning says so at start",
    )
    store_timeout_s: float = Field(
        default=0.05, gt=0, description="Deadline of each call to a shared (Redis) store"
    )
    outbox: Path = Field(
        default=Path("riskengine-outbox.db"),
        description="Local file keeping what a failing shared store must still receive",
    )
    log_level: str = "INFO"
    auth: Literal["keys", "open"] = Field(
        default="keys",
        description="keys: every /v1 call needs an API key with the route's scope; open: no "
        "check at all, for development and tests only (refused in production)",
    )
    api_keys: Path = Field(
        default=Path("riskengine-keys.json"),
        description="The API key file (hashes only), managed with `riskengine keys`",
    )
    # -- the HTTP edge against slow and greedy clients (riskengine.api.server, .guards)
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="A client must send a request's whole header within "
        "this many seconds of connecting (or of starting the request, on a kept-alive "
        "connection), else the connection is closed",
    )
    body_timeout_s: float = Field(
        default=10.0, gt=0, description="A client must send a request's whole body within "
        "this many seconds of its header, else the connection is closed",
    )
    max_in_flight: int = Field(
        default=256, ge=1, description="Requests handled at once; past it, 503 with "
        "Retry-After at once (GET /healthz is never refused)",
    )
    # -- external signals (riskengine.adapters.signals)
    signals_budget_s: float = Field(
        default=0.03, gt=0, le=1.0,
        description="The most that waiting for signal lookups may add to a scoring answer; "
        "what has not answered by then is 'unknown'",
    )
    signals_phone_facts: bool = Field(
        default=True, description="Derive the phone number's validity, type, region and "
        "carrier with phonenumbers (offline)",
    )
    signals_phone_accounts_max: int = Field(
        default=100_000, ge=0, description="Phone numbers whose accounts are counted in "
        "memory (phone_accounts_30d); 0 turns the count off",
    )
    signals_phone_risk_file: Path | None = Field(
        default=None, description="CSV of phone risk levels by E.164 number or prefix",
    )
    signals_recycled_file: Path | None = Field(
        default=None, description="CSV of recycled numbers and the date each was reassigned",
    )
    signals_ip_reputation_file: Path | None = Field(
        default=None, description="CSV of IP ranges and ASNs with a reputation category",
    )
    signals_file_check_s: float = Field(
        default=1.0, ge=0, description="How often the signal files are checked for changes "
        "(0: on every lookup)",
    )
    signals_http_url: str | None = Field(
        default=None, description="A carrier's or risk service's phone lookup (POST JSON)",
    )
    signals_http_auth_header: SecretStr | None = Field(
        default=None, description="Header sent to that service, 'Name: value'",
    )
    signals_http_timeout_s: float = Field(
        default=0.2, gt=0, description="Deadline of one exchange with that service; its "
        "answers arriving after the budget are cached for the next login",
    )
    signals_http_cache_ttl_s: float = Field(
        default=3600.0, ge=0, description="How long that service's answers are reused",
    )
    signals_breaker_failures: int = Field(
        default=5, ge=1, description="Consecutive failures that stop calling a provider",
    )
    signals_breaker_reset_s: float = Field(
        default=10.0, gt=0, description="How long a failing provider is left alone",
    )
    signals_max_in_flight: int = Field(
        default=4, ge=1, description="Lookups one provider may have running at once",
    )

    @model_validator(mode="after")
    def _no_snapshots_in_tests_by_default(self) -> Settings:
        if self.env == "test" and "model_dir" not in self.model_fields_set:
            self.model_dir = None
        return self

    @model_validator(mode="after")
    def _no_open_api_in_production(self) -> Settings:
        if self.env == "production" and self.auth == "open":
            raise ValueError(
                "RISKENGINE_AUTH=open lets anyone call the API without a key: it is for "
                "development and tests only. Use RISKENGINE_AUTH=keys (the default) and make "
                "keys with `riskengine keys create`"
            )
        return self

    @model_validator(mode="after")
    def _key_required_outside_development(self) -> Settings:
        if self.env == "production" and self.pseudonym_key is None and not self.pseudonym_key_file:
            raise ValueError(
                "RISKENGINE_PSEUDONYM_KEY or RISKENGINE_PSEUDONYM_KEY_FILE must be set "
                "(or RISKENGINE_ENV=development for a local trial with a public key)"
            )
        if self.env == "production" and self.model_signing_key is None:
            raise ValueError(
                "RISKENGINE_MODEL_SIGNING_KEY must be set: model snapshots are signed with it "
                "(or RISKENGINE_ENV=development for a local trial with a public key)"
            )
        return self

    def signing_key(self) -> bytes:
        """The HMAC key of model snapshots (a public one only outside production)."""
        if self.model_signing_key is not None:
            return self.model_signing_key.get_secret_value().encode()
        if self.env == "production":
            raise ValueError("no model signing key configured")
        return DEV_SIGNING_KEY.encode()

    def pseudonym_keys(self) -> list[tuple[str, bytes]]:
        """(key id, key) pairs, the current key first: from the key file (which may list
        retired keys after it), else the environment (the public key only in development)."""
        if self.pseudonym_key_file is not None:
            return parse_key_file(self.pseudonym_key_file.read_text())
        if self.pseudonym_key is not None:
            return [(self.pseudonym_key_id, self.pseudonym_key.get_secret_value().encode())]
        if self.env == "production":
            raise ValueError("no pseudonymization key configured")
        return [(self.pseudonym_key_id, DEV_KEY.encode())]

    def time_policy(self) -> TimePolicy:
        """How callers' timestamps are bounded and whether windows run on them."""
        return TimePolicy(max_ahead_s=self.timestamp_max_ahead_s,
                          max_age_s=self.timestamp_max_age_s,
                          trust_event_time=self.trust_event_time)

    def key_bytes(self) -> bytes:
        """The current pseudonymization key."""
        return self.pseudonym_keys()[0][1]

    def pseudonymizer(self) -> Pseudonymizer:
        (key_id, key), *retired = self.pseudonym_keys()
        return Pseudonymizer(key, key_id=key_id, previous=retired)
