"""Composition root: build an ``Engine`` from ``Settings`` (stores, rules, model, IP data),
and the background work that runs beside it (``Background``)."""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from features.ipintel import IpIntel
from features.phone import warm_numbering_plans
from features.useragent import parse_user_agent
from models import persistence, snapshots
from models.outcome import OutcomeModel
from riskengine.adapters.breaker import CircuitBreaker
from riskengine.adapters.learner import ANOMALY_SLOT, OUTCOME_PREFIX, OUTCOME_SLOT, Slot
from riskengine.adapters.outbox import Outbox
from riskengine.adapters.signals import (
    Guard,
    HttpPhoneRisk,
    IpReputationFile,
    PhoneAccounts,
    PhoneRiskFile,
    Provider,
    RecycledNumbersFile,
    Signals,
)
from riskengine.adapters.stores import open_store
from riskengine.core.rules import Action, RulesetError, load_ruleset, shipped_ruleset_text
from riskengine.service.scorer import Engine
from riskengine.service.settings import Settings

log = logging.getLogger("riskengine.model")
startup_log = logging.getLogger("riskengine.api")  # where the service says how it starts


@dataclass(frozen=True, slots=True)
class Built:
    engine: Engine
    follower: Any = None  # riskengine.adapters.learner.ModelFollower with a shared (Redis) store
    rules: RulesManager | None = None
    outcome_follower: Any = None  # the same, for the outcome model


class RulesManager:
    """Reloads the live and shadow rulesets from their files without a restart.

    A file is parsed and validated first; only a valid one replaces the set in use, so an
    invalid edit is refused (with the rule and field named) while the old set keeps serving.
    """

    def __init__(self, engine: Engine, live: Path | None, shadow: Path | None) -> None:
        self.engine, self.live, self.shadow = engine, live, shadow
        self._seen = self._stamps()
        self.last_error: str | None = None

    def _stamps(self) -> tuple[float | None, float | None]:
        return tuple(  # type: ignore[return-value]
            p.stat().st_mtime if p is not None and p.exists() else None
            for p in (self.live, self.shadow))

    def reload(self) -> dict[str, Any]:
        """Validate both files, then swap; raises ``RulesetError`` and changes nothing."""
        live = load_ruleset(self.live)
        shadow = load_ruleset(self.shadow) if self.shadow is not None else None
        current = self.engine.shadow
        changed = (shadow is None) != (current is None) or (
            shadow is not None and current is not None and shadow.sha256 != current.sha256)
        # An unchanged candidate keeps its shadow statistics; a new one starts afresh.
        self.engine.swap_rules(live, shadow=shadow if changed else False)
        self._seen = self._stamps()
        self.last_error = None
        log.warning("rules in force: %s (shadow %s)", live.label,
                    shadow.label if shadow else "none")
        return self.status()

    def status(self) -> dict[str, Any]:
        e = self.engine
        return {"live": e.ruleset.label, "live_file": str(self.live or "shipped"),
                "shadow": e.shadow.label if e.shadow else None,
                "tenants": sorted(e.ruleset.tenants), "last_error": self.last_error}

    def watch(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.wait(interval_s):
            if self._stamps() == self._seen:
                continue
            try:
                self.reload()
            except RulesetError as exc:
                self._seen = self._stamps()  # report once per edit, keep serving the old set
                self.last_error = str(exc)
                log.error("ruleset change refused, the old set keeps serving: %s", exc)


def ruleset_text(path: Path | None) -> str:
    """The text of the ruleset file at ``path``, or of the shipped one when ``path`` is None
    (the file ``load_ruleset`` reads then)."""
    if path is not None:
        return path.read_text("utf-8")
    return shipped_ruleset_text()


def service_settings(settings: Settings | None = None) -> Settings:
    """The settings the service runs with: those given, else the environment's.

    Says so when development mode pseudonymizes identifiers with the public key.
    """
    resolved = settings if settings is not None else Settings()
    if resolved.env == "development" and resolved.pseudonym_key is None:
        startup_log.warning("development mode: identifiers are pseudonymized with a PUBLIC "
                            "key; set RISKENGINE_PSEUDONYM_KEY before real traffic")
    if resolved.trust_event_time:
        startup_log.warning("RISKENGINE_TRUST_EVENT_TIME=1: velocity windows and learning "
                            "caps run on the callers' timestamps, with no age limit; for "
                            "replaying recorded traffic only, never for real callers")
    return resolved


def load_model(settings: Settings) -> tuple[Any, dict[str, Any]]:
    """The active signed snapshot if there is one, else the configured or shipped model."""
    active = snapshots.active_version(settings.model_dir) if settings.model_dir else None
    if active is not None and settings.model_dir is not None:
        return snapshots.load_snapshot(settings.model_dir / f"{active}.joblib",
                                       key=settings.signing_key())
    return persistence.load(settings.model)


# The version of an outcome model that has learned nothing: the hand-set combination.
OUTCOME_PRIOR_VERSION = "outcome-prior"


def outcome_folder(settings: Settings) -> Path | None:
    """Where the outcome model's signed snapshots and ``ACTIVE`` pointer are kept."""
    if settings.model_dir is None:
        return None
    return settings.model_dir / persistence.OUTCOME_FOLDER


def load_outcome_model(settings: Settings) -> tuple[OutcomeModel, dict[str, Any]]:
    """The active signed outcome snapshot if there is one, else the shipped outcome model
    if one is shipped, else a model that has learned nothing (at its prior, the hand-set
    combination; it is not ``ready``, so the hand-set combination scores until it is)."""
    folder = outcome_folder(settings)
    active = snapshots.active_version(folder) if folder is not None and folder.exists() \
        else None
    if active is not None and folder is not None:
        return snapshots.load_snapshot(folder / f"{active}.joblib", key=settings.signing_key())
    shipped = persistence.load_outcome()
    if shipped is not None:
        return shipped
    return OutcomeModel(), {"model_version": OUTCOME_PRIOR_VERSION, "training": {
        "source": "none: the hand-set combination of the ruleset (cold start)"}}


def build_engine(settings: Settings) -> Built:
    """Open the store, load and validate rules and model, open the IP databases and the
    signal providers (an invalid signal file stops the start, naming its line)."""
    ruleset = load_ruleset(settings.rules)
    model, card = load_model(settings)
    warm = getattr(model, "warm", None)
    if warm is not None:  # compile (or load from numba's cache) now, never in a request
        warm()
    outcome, outcome_card = load_outcome_model(settings)
    if settings.ipdata_city_mmdb is not None:
        ipintel = IpIntel.from_mmdb(settings.ipdata_city_mmdb, settings.ipdata_asn_mmdb)
    else:
        ipintel = IpIntel.bundled(settings.ipdata_cache_dir)
    _warm_up(ipintel, phones=settings.signals_phone_facts)
    store = open_store(settings.store, retention_s=settings.decision_retention_days * 86_400,
                       timeout_s=settings.store_timeout_s)
    engine = Engine(
        store=store,
        ruleset=ruleset,
        model=model,
        model_version=str(card["model_version"]),
        model_card=card,
        ipintel=ipintel,
        pseudonymizer=settings.pseudonymizer(),
        failover=Action(settings.failover_decision),
        signals=build_signals(settings),
        time_policy=settings.time_policy(),
        outcome=outcome,
        outcome_version=str(outcome_card["model_version"]),
        outcome_card=outcome_card,
    )
    follower = outcome_follower = None
    if shared_store(settings.store):
        from riskengine.adapters.learner import ModelFollower, RedisLessons

        engine.lessons = RedisLessons(settings.store, timeout_s=settings.store_timeout_s)
        engine.breaker = CircuitBreaker()
        engine.outbox = Outbox(settings.outbox)
        follower = ModelFollower(settings.store, engine, key=settings.signing_key())
        # Outcomes travel as the anomaly model's lessons do, on a stream of their own that
        # the learner process teaches the outcome model from (OUTCOME_PREFIX).
        engine.outcome_lessons = RedisLessons(settings.store, prefix=OUTCOME_PREFIX,
                                              timeout_s=settings.store_timeout_s)
        outcome_follower = ModelFollower(settings.store, engine, key=settings.signing_key(),
                                         prefix=OUTCOME_PREFIX, slot=OUTCOME_SLOT)
        for who in (follower, outcome_follower):
            try:
                who.tick()  # serve the published model from the first request on
            except Exception:  # Redis may be down at start; the follower retries
                log.warning("no published model could be fetched at start; serving %s "
                            "and %s", engine.model_version, engine.outcome_version)
    if settings.shadow_rules is not None:
        engine.swap_rules(shadow=load_ruleset(settings.shadow_rules))
    return Built(engine, follower, RulesManager(engine, settings.rules, settings.shadow_rules),
                 outcome_follower)


def close_engine(engine: Engine) -> None:
    """Close what the engine opened: its store, and its outbox if it has one."""
    engine.store.close()
    if engine.outbox is not None:
        engine.outbox.close()


def shared_store(url: str) -> bool:
    """A store several instances share: they learn through one learner."""
    return url.startswith(("redis://", "rediss://"))


# Collections of the middle generation between two full ones (CPython's default: 10).
FULL_COLLECTION_AFTER = 100


def settle_heap() -> None:
    """Hide everything allocated so far from the cyclic garbage collector (``gc.freeze``),
    once the engine is built. The model's trees, the IP databases and the imported
    libraries are some 150,000 objects that live as long as the process; left in view,
    every full collection walks them all, a pause of about 100 ms inside whichever request
    set it off. Frozen objects are still freed by reference counting (a swapped-out model
    goes); only cycles among them are not.

    Full collections are then made ten times rarer (``FULL_COLLECTION_AFTER``): what they
    walk is what serving keeps (parsed profiles, IP and phone facts: some 50,000 objects,
    a pause of 45-150 ms here), and by default one falls due every ~50,000 logins.
    Cycles that die young are still found by the two younger generations."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


def drain_outbox_forever(engine: Engine, stop: threading.Event, interval_s: float = 0.5) -> None:
    """Replay the outbox whenever the shared store answers again."""
    while not stop.wait(interval_s):
        try:
            engine.drain_outbox()
        except Exception:  # still down: the breaker and the next round handle it
            log.debug("outbox drain failed", exc_info=True)


class ModelKeeper:
    """Saves signed snapshots of an online model and follows the ``ACTIVE`` pointer.

    ``tick`` (every ``snapshot_interval_s`` in the service, and once at shutdown) first
    switches the engine to the snapshot ``ACTIVE`` names if an operator rolled back, then
    snapshots the model if it learned anything since the last snapshot, making the new
    snapshot the active one. ``slot`` says which model: the anomaly model (the default)
    or the outcome model (``OUTCOME_SLOT``, in a folder of its own).
    """

    def __init__(self, engine: Engine, folder: Path, key: bytes, *,
                 slot: Slot = ANOMALY_SLOT) -> None:
        self.engine = engine
        self.folder = folder
        self.key = key
        self.slot = slot
        self._saved_at = self._learned()
        self._lock = threading.Lock()

    def _learned(self) -> int | None:
        model = self.slot.model(self.engine)
        return None if model is None else int(model.n_learned_)

    def tick(self) -> str | None:
        """Follow a rollback, then snapshot; returns the version saved, if any."""
        with self._lock:
            self.follow()
            if self._learned() in (None, self._saved_at):
                return None
            self.folder.mkdir(parents=True, exist_ok=True)
            taken = {s.version for s in snapshots.list_snapshots(self.folder)}
            parent = self.slot.version(self.engine)
            version = snapshots.next_version(parent, taken)
            frozen = self.slot.frozen(self.engine)
            artifact = snapshots.save_snapshot(
                frozen, self.folder, version=version, parent=parent, key=self.key,
                card=self.slot.calibration(self.engine),
                training=self.slot.card(self.engine).get("training"))
            if snapshots.active_version(self.folder) not in (None, parent):
                # An operator promoted or rolled back while this snapshot was written: theirs
                # wins; this one stays on disk, listed but not active.
                self.follow()
                return None
            snapshots.set_active(self.folder, version, key=self.key)
            self.slot.name(self.engine, version, persistence.read_card(artifact))
            self._saved_at = frozen.learned
            return version

    def follow(self) -> bool:
        """Switch to the snapshot ``ACTIVE`` names when it is not the one serving."""
        active = snapshots.active_version(self.folder) if self.folder.exists() else None
        if active is None or active == self.slot.version(self.engine):
            return False
        model, card = snapshots.load_snapshot(self.folder / f"{active}.joblib", key=self.key)
        self.slot.swap(self.engine, model, str(card["model_version"]), card)
        self._saved_at = model.n_learned_
        log.warning("now serving model %s (the ACTIVE snapshot)", active)
        return True

    def run(self, stop: threading.Event, interval_s: float) -> None:
        while not stop.wait(interval_s):
            try:
                self.tick()
            except Exception:  # a failed snapshot must not stop the next one
                log.exception("model snapshot failed")


class Background:
    """The service's background threads, started and stopped together.

    - ``rules-watch``: reloads the ruleset files when they change (``RulesManager.watch``),
      if ``rules_watch_s`` is above 0;
    - ``outbox-drainer``: replays the outbox once the shared store answers again, if the
      engine has an outbox (``drain_outbox_forever``);
    - ``model-follower`` and ``outcome-follower``: with a shared store, follow the models
      the learner publishes; otherwise ``model-keeper`` and ``outcome-keeper``: snapshot
      the online models into ``model_dir`` (the outcome model into its ``outcome``
      folder), if set (``ModelKeeper``).

    ``stop`` ends them all through one event, joins each, then takes the keeper's snapshot
    on shutdown.
    """

    def __init__(self, built: Built, settings: Settings, *, join_timeout_s: float = 5.0) -> None:
        self.join_timeout_s = join_timeout_s
        self.keeper: ModelKeeper | None = None
        self.outcome_keeper: ModelKeeper | None = None
        self._stop = threading.Event()
        work: list[tuple[str, Callable[[], None]]] = []
        if built.rules is not None and settings.rules_watch_s > 0:
            work.append(("rules-watch",
                         partial(built.rules.watch, self._stop, settings.rules_watch_s)))
        if built.engine.outbox is not None:
            work.append(("outbox-drainer", partial(drain_outbox_forever, built.engine, self._stop)))
        if built.follower is not None:
            # A shared learner owns the model; this instance follows its snapshots.
            work.append(("model-follower", partial(built.follower.run, self._stop)))
            if built.outcome_follower is not None:
                work.append(("outcome-follower",
                             partial(built.outcome_follower.run, self._stop)))
        elif settings.model_dir is not None:
            self.keeper = ModelKeeper(built.engine, settings.model_dir, settings.signing_key())
            work.append(("model-keeper",
                         partial(self.keeper.run, self._stop, settings.snapshot_interval_s)))
            folder = outcome_folder(settings)
            if folder is not None and built.engine.outcome is not None:
                self.outcome_keeper = ModelKeeper(built.engine, folder, settings.signing_key(),
                                                  slot=OUTCOME_SLOT)
                work.append(("outcome-keeper", partial(self.outcome_keeper.run, self._stop,
                                                       settings.snapshot_interval_s)))
        self.threads = [threading.Thread(target=target, name=name, daemon=True)
                        for name, target in work]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Stop and join every thread, then snapshot the model once more."""
        self._stop.set()
        for thread in self.threads:
            if thread.is_alive():
                thread.join(timeout=self.join_timeout_s)
        for keeper in (self.keeper, self.outcome_keeper):
            if keeper is not None:
                try:
                    keeper.tick()  # the snapshot on shutdown
                except Exception:
                    log.exception("model snapshot at shutdown failed")


def _warm_up(ipintel: IpIntel, *, phones: bool) -> None:
    """Load the lazily built indexes now, so the first customer does not wait for them (the
    numbering plans when the phone's facts are read)."""
    ipintel.lookup("1.0.0.1")
    parse_user_agent("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36")
    if phones:
        warm_numbering_plans()


def build_signals(settings: Settings) -> Signals | None:
    """The signals the settings configure; None when there is nothing to do.

    Raises ``SignalFileError`` for a configured file that is missing or invalid, and
    ``ValueError`` for an unusable service URL or header: the service does not start.
    """
    providers: list[tuple[Provider, float]] = []
    files = ((PhoneRiskFile, settings.signals_phone_risk_file),
             (RecycledNumbersFile, settings.signals_recycled_file),
             (IpReputationFile, settings.signals_ip_reputation_file))
    for cls, path in files:
        if path is not None:
            providers.append((cls(path, check_interval_s=settings.signals_file_check_s), 0.0))
    if settings.signals_http_url:
        header = settings.signals_http_auth_header
        providers.append((HttpPhoneRisk(
            settings.signals_http_url, timeout_s=settings.signals_http_timeout_s,
            auth_header=header.get_secret_value() if header is not None else None,
        ), settings.signals_http_cache_ttl_s))
    counting = settings.signals_phone_accounts_max > 0
    if not providers and not settings.signals_phone_facts and not counting:
        return None
    guards = [
        Guard(provider, cache_ttl_s=ttl, max_in_flight=settings.signals_max_in_flight,
              breaker=CircuitBreaker(settings.signals_breaker_failures,
                                     settings.signals_breaker_reset_s))
        for provider, ttl in providers
    ]
    return Signals(
        guards,
        budget_s=settings.signals_budget_s,
        phone_facts=settings.signals_phone_facts,
        phone_accounts=PhoneAccounts(max_phones=settings.signals_phone_accounts_max)
        if counting else None,
    )
