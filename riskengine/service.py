"""Composition root: build an ``Engine`` from ``Settings`` (stores, rules, model, IP data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from features.ipintel import IpIntel
from features.useragent import parse_user_agent
from models import persistence
from riskengine.engine import Engine
from riskengine.privacy import Pseudonymizer
from riskengine.rules import Action, load_ruleset
from riskengine.settings import Settings
from riskengine.stores import open_store


@dataclass(frozen=True, slots=True)
class Built:
    engine: Engine
    model_card: dict[str, Any]


def build_engine(settings: Settings) -> Built:
    """Open the store, load and validate rules and model, open the IP databases."""
    ruleset = load_ruleset(settings.rules)
    model, card = persistence.load(settings.model)
    if settings.ipdata_city_mmdb is not None:
        ipintel = IpIntel.from_mmdb(settings.ipdata_city_mmdb, settings.ipdata_asn_mmdb)
    else:
        ipintel = IpIntel.bundled(settings.ipdata_cache_dir)
    _warm_up(ipintel)
    store = open_store(settings.store)
    engine = Engine(
        store=store,
        ruleset=ruleset,
        model=model,
        model_version=str(card["model_version"]),
        ipintel=ipintel,
        pseudonymizer=Pseudonymizer(settings.key_bytes(), key_id=settings.pseudonym_key_id),
        failover=Action(settings.failover_decision),
    )
    return Built(engine, card)


def _warm_up(ipintel: IpIntel) -> None:
    """Load the lazily built indexes now, so the first customer does not wait for them."""
    ipintel.lookup("1.0.0.1")
    parse_user_agent("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36")
