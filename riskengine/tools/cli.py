"""Command line: ``riskengine serve | learner | simulate | replay | backtest | purge | store |
models | keys``.

Settings come from ``RISKENGINE_*`` variables, as for the service. ``RISKENGINE_ENV`` is
``development`` by default for the subcommands that use no secret (``models list``, ``purge``,
``store migrate``, ``replay``, ``backtest``, ``keys``), as ``make run`` has it; ``serve``,
``learner``, ``models rollback`` and ``models promote`` need the production secrets unless
``RISKENGINE_ENV`` says ``development``. Whatever is missing or wrong ends the command with
exit status 2 and one line saying what to set; no subcommand ends in a traceback, and no
secret is printed except a new API key, once, by ``keys create``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from riskengine.api.app import Prepared
    from riskengine.service.settings import Settings


class CommandError(Exception):
    """What ends a subcommand with exit status 2 and this one line."""


def _one_line(exc: ValidationError) -> str:
    """A settings error as one line: each problem, with the variable it comes from."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        message = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"RISKENGINE_{where.upper()}: {message}" if where else message)
    return "; ".join(parts)


def _serve(args: argparse.Namespace) -> int:
    from riskengine.adapters import logsetup
    from riskengine.api import create_app
    from riskengine.api.server import cpu_affinity_supported, run
    from riskengine.core.rules import RulesetError, load_ruleset
    from riskengine.service.build import close_engine, shared_store
    from riskengine.service.settings import Settings

    if args.cpu_affinity and not cpu_affinity_supported():
        raise CommandError("cannot start: --cpu-affinity needs Linux")

    overrides: dict[str, object] = {}
    if args.store:
        overrides["store"] = args.store
    if args.rules:
        overrides["rules"] = Path(args.rules)
    if args.env:
        overrides["env"] = args.env
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
        load_ruleset(settings.rules)  # refuse a bad ruleset before binding the port
    except ValidationError as exc:
        raise CommandError(f"cannot start: {_one_line(exc)}") from None
    except RulesetError as exc:
        raise CommandError(f"cannot start: {exc}") from None
    deadlines = {"header_timeout_s": settings.header_timeout_s,
                 "body_timeout_s": settings.body_timeout_s}
    if args.workers < 1:
        raise CommandError("cannot start: --workers must be at least 1")
    if args.workers == 1:
        logsetup.configure(settings.log_level)  # lines off the event loop, never blocking it
        run(create_app(settings, settle_heap=True, prepared=_prepared(settings)),
            host=args.host, port=args.port, log_level=settings.log_level.lower(),
            cpu_affinity=args.cpu_affinity, **deadlines)
        return 0
    if not shared_store(settings.store):
        # Each worker is a process of its own: a memory store would be N stores, and N
        # models learning apart; SQLite takes one writer at a time (bench/README.md).
        kind = settings.store.split(":", 1)[0]
        if kind == "memory":
            raise CommandError("cannot start: --workers > 1 needs a store the workers share "
                               "(redis://...); each worker would keep its own memory: store")
        print(f"riskengine: {args.workers} workers on one {kind} store: they write one at "
              "a time and each learns its own model; use Redis to scale with cores",
              file=sys.stderr)
    # Each worker prepares its own service; one made here first turns a start that cannot
    # succeed into one line before any worker is spawned.
    close_engine(_prepared(settings).built.engine)
    # The workers are spawned processes: they read their settings from the environment.
    os.environ.update({"RISKENGINE_" + name.upper(): str(value)
                       for name, value in overrides.items()})
    run("riskengine.api.app:served_app", host=args.host, port=args.port,
        log_level=settings.log_level.lower(), workers=args.workers,
        cpu_affinity=args.cpu_affinity, **deadlines)
    return 0


def _prepared(settings: Settings) -> Prepared:
    """The service's parts (``riskengine.api.app.prepare``), or exit 2 with one line: what
    stopped them is the operator's to fix (a key, a file, a model, a store)."""
    from riskengine.api.app import prepare

    try:
        return prepare(settings)
    except ValidationError as exc:
        raise CommandError(f"cannot start: {_one_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - whatever stops a start is reported, not traced
        what = " ".join(str(exc).split()) or type(exc).__name__
        raise CommandError(f"cannot start: {what}") from None


def _simulate(args: argparse.Namespace) -> int:
    from riskengine.tools.simulate import simulate_to
    from riskengine.tools.worlds import World

    started = time.perf_counter()
    # World seed 0 is the default world, as bench/detection.py counts them.
    world = World.draw(args.world_seed) if args.world_seed else None
    n = simulate_to(args.out, users=args.users, days=args.days, seed=args.seed, world=world)
    print(f"wrote {n:,} events to {args.out} in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from riskengine.service.build import build_engine
    from riskengine.tools.replay import Replayer, format_report, read_jsonl

    overrides: dict[str, object] = {"store": args.store}
    if args.rules:
        overrides["rules"] = Path(args.rules)
    if args.model:
        overrides["model"] = Path(args.model)
    # Offline replays need no secret key unless the operator configured one.
    settings = _settings(secrets=False, **overrides)
    built = build_engine(settings)
    baseline = None
    if args.baseline == "freeman":
        from models.freeman import FreemanModel

        baseline = FreemanModel()
    fmt = args.format or ("rba" if ".csv" in Path(args.file).name else "jsonl")
    if fmt == "rba":
        from riskengine.tools.datasets.rba import RbaReader

        lines = RbaReader(args.file, validate=False).read()  # replay validates each line
    else:
        lines = read_jsonl(args.file)
    report = Replayer(built.engine, warmup_days=args.warmup_days, baseline=baseline,
                      seed=args.seed).run(lines)
    data = report.to_dict()
    data["config"] = {"rules_version": built.engine.ruleset.label,
                      "model_version": built.engine.model_version, "file": str(args.file),
                      "warmup_days": args.warmup_days}
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    print(format_report(data))
    built.engine.store.close()
    return 0


def _settings(*, secrets: bool, **overrides: object) -> Any:
    """The settings, as the environment gives them. ``secrets``: the command uses the
    pseudonymization or signing key, so it runs in production mode unless RISKENGINE_ENV
    says otherwise; a command that uses neither runs in development mode by default, as
    ``make run`` does."""
    from riskengine.service.settings import Settings

    overrides.setdefault("env", os.environ.get("RISKENGINE_ENV") or (
        "production" if secrets else "development"))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        line = _one_line(exc)
        if secrets and "RISKENGINE_ENV" not in line:
            line += " (or RISKENGINE_ENV=development, as `make run` sets, for a local trial)"
        raise CommandError(line) from None


def _learner(args: argparse.Namespace) -> int:
    import signal
    import threading

    from riskengine.adapters.learner import Learner
    from riskengine.service.build import load_model

    settings = _settings(secrets=True, store=args.store,
                         **({"model_dir": Path(args.dir)} if args.dir else {}))
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s %(message)s")
    model, card = load_model(settings)
    learner = Learner(settings.store, model=model, version=str(card["model_version"]),
                      training=card.get("training"),
                      key=settings.signing_key(), folder=settings.model_dir or Path(
                          "model-snapshots"), snapshot_every_s=args.snapshot_every_s)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    learner.run(stop)
    return 0


def _backtest(args: argparse.Namespace) -> int:
    from riskengine.core.rules import RulesetError, load_ruleset
    from riskengine.service.build import build_engine
    from riskengine.tools.backtest import backtest, format_backtest
    from riskengine.tools.replay import read_jsonl

    try:
        live = load_ruleset(args.live)
        candidate = load_ruleset(args.rules)
    except RulesetError as exc:
        print(f"riskengine: {exc}", file=sys.stderr)
        return 2
    settings = _settings(secrets=False, store="memory:", model_dir=None, auth="open")

    def make_engine(rules: Any) -> Any:
        engine = build_engine(settings).engine
        engine.swap_rules(rules)
        return engine

    data = backtest(read_jsonl(args.events), make_engine=make_engine, live=live,
                    candidate=candidate, target_challenge_rate=args.target_challenge_rate,
                    warmup_days=args.warmup_days)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    print(format_backtest(data))
    return 0


def _purge(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from riskengine.adapters.stores import open_store
    from riskengine.core.wire import parse_timestamp

    settings = _settings(secrets=False, **({"store": args.store} if args.store else {}))
    now = parse_timestamp(args.now) if args.now else datetime.now(UTC)
    store = open_store(settings.store, retention_s=settings.decision_retention_days * 86_400,
                       timeout_s=max(settings.store_timeout_s, 5.0))
    report = store.purge(now=now.timestamp(),
                         profile_retention_s=settings.profile_retention_days * 86_400)
    store.close()
    print(json.dumps({"now": now.isoformat(), "removed": report}))
    return 0


def _store_migrate(args: argparse.Namespace) -> int:
    from riskengine.adapters.stores import migrate_store

    settings = _settings(secrets=False, **({"store": args.store} if args.store else {}))
    try:
        done = migrate_store(settings.store, timeout_s=max(settings.store_timeout_s, 5.0))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(json.dumps(done))
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from models.snapshots import list_snapshots

    settings = _settings(secrets=False, **({"model_dir": Path(args.dir)} if args.dir else {}))
    if settings.model_dir is None:
        raise CommandError("no model folder configured: set RISKENGINE_MODEL_DIR or --dir")
    rows = list_snapshots(settings.model_dir)
    if not rows:
        print(f"no snapshots in {settings.model_dir}")
    for snap in rows:
        print(f"{'*' if snap.active else ' '} {snap.version:<40} {snap.created:<26} "
              f"learned {snap.learned:>9,}  parent {snap.parent or '-'}")
    return 0


def _models_rollback(args: argparse.Namespace) -> int:
    from models.persistence import ModelArtifactError
    from models.snapshots import set_active

    settings = _settings(secrets=True, **({"model_dir": Path(args.dir)} if args.dir else {}))
    if settings.model_dir is None:
        raise CommandError("no model folder configured: set RISKENGINE_MODEL_DIR or --dir")
    try:
        set_active(settings.model_dir, args.version, key=settings.signing_key())
    except ModelArtifactError as exc:
        print(f"riskengine: rollback refused: {exc}", file=sys.stderr)
        return 2
    print(f"{args.version} is now active; running services switch at their next tick")
    return 0


def _models_promote(args: argparse.Namespace) -> int:
    from models.persistence import ModelArtifactError
    from riskengine.tools.promote import promote

    settings = _settings(secrets=True, **({"model_dir": Path(args.dir)} if args.dir else {}))
    if settings.model_dir is None:
        raise CommandError("no model folder configured: set RISKENGINE_MODEL_DIR or --dir")
    try:
        done = promote(args.artifact, settings.model_dir, key=settings.signing_key())
    except ModelArtifactError as exc:
        print(f"riskengine: promotion refused: {exc}", file=sys.stderr)
        return 2
    was = f" (was {done.replaced})" if done.replaced else ""
    print(f"{done.version} is now active in {settings.model_dir}{was}; running services "
          f"switch at their next tick")
    return 0


def _keys_store(args: argparse.Namespace) -> Any:
    from riskengine.adapters.auth import KeyStore

    if args.file:
        return KeyStore(Path(args.file))
    # Only the key file's path is read here (RISKENGINE_API_KEYS, or .env); env is set so
    # that managing keys needs none of the serving secrets.
    return KeyStore(_settings(secrets=False, env="development").api_keys)


def _keys_create(args: argparse.Namespace) -> int:
    store = _keys_store(args)
    try:
        record, key = store.create(args.name, args.scope, tenants=args.tenant)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    print(f"created key {record.id} ({record.name}: {', '.join(sorted(record.scopes))}; "
          f"tenants {', '.join(sorted(record.tenants))}) in {store.path}. The key, shown only "
          f"this once:", file=sys.stderr)
    print(key)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    store = _keys_store(args)
    records = store.list()
    if not records:
        print(f"no API keys in {store.path}")
        return 0
    print(f"{'id':<12}  {'name':<24}  {'scopes':<22}  {'tenants':<20}  {'created':<25}  "
          f"revoked")
    for r in records:
        print(f"{r.id:<12}  {r.name:<24}  {','.join(sorted(r.scopes)):<22}  "
              f"{','.join(sorted(r.tenants)):<20}  {r.created:<25}  "
              f"{'yes' if r.revoked else 'no'}")
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from riskengine.adapters.auth import key_id_of, looks_like_key_id

    store = _keys_store(args)
    # The argument may be the whole key (the one thing at hand when a key leaked): only its
    # id is used, and only an id is ever printed back, never the argument itself.
    key_id = key_id_of(args.key_id)
    shown = key_id if looks_like_key_id(key_id) else "of that id"
    if not store.revoke(key_id):
        print(f"riskengine: no key {shown} in {store.path}", file=sys.stderr)
        return 1
    print(f"revoked key {shown}; running services refuse it from their next request")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="riskengine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the scoring API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--store", help="sqlite:PATH (default sqlite:riskengine.db) or memory:")
    serve.add_argument("--rules", help="ruleset YAML (default: the shipped ruleset)")
    serve.add_argument("--env", choices=["development", "production"],
                       help="development allows the public pseudonymization key")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (default 1); more than one needs the Redis "
                       "store to scale (SQLite: one writer at a time; memory: refused)")
    serve.add_argument("--cpu-affinity", action="store_true",
                       help="pin each worker process to a CPU of its own, one no other "
                       "pinned riskengine process on this host holds (Linux); for a host "
                       "that runs little else: more requests a second on the Redis store "
                       "(bench/README.md, \"Workers pinned to a core\")")
    serve.set_defaults(func=_serve)

    sim = sub.add_parser("simulate", help="write labelled login traffic as JSONL")
    sim.add_argument("--users", type=int, default=2000)
    sim.add_argument("--days", type=int, default=60)
    sim.add_argument("--seed", type=int, default=1)
    sim.add_argument("--world-seed", type=int, default=0,
                     help="draw the world's behaviours with this seed (0: the default world; "
                          "1-20 are bench/detection.py's tuning worlds, 1001 on its held-out)")
    sim.add_argument("--out", required=True, help="FILE.jsonl")
    sim.set_defaults(func=_simulate)

    rep = sub.add_parser("replay", help="replay labelled JSONL through the engine and report")
    rep.add_argument("file", help="JSONL (.gz too) of labelled wire events, - for stdin, or "
                     "the public RBA dataset's CSV (.csv, .csv.gz)")
    rep.add_argument("--format", choices=["jsonl", "rba"],
                     help="input format (default: rba for .csv files, else jsonl)")
    rep.add_argument("--store", default="memory:?retention_s=172800",
                     help="store URL (default: in memory, decisions kept two days of event "
                          "time so that memory grows with users, not events)")
    rep.add_argument("--rules", help="ruleset YAML (default: the shipped ruleset)")
    rep.add_argument("--model", help="model artifact (default: the shipped model)")
    rep.add_argument("--warmup-days", type=float, default=14.0)
    rep.add_argument("--baseline", choices=["none", "freeman"], default="none",
                     help="also score the events with a baseline model")
    rep.add_argument("--json", help="also write the report as JSON to this file")
    rep.add_argument("--seed", type=int, default=0, help="seed of the simulated step-up answers")
    rep.set_defaults(func=_replay)

    learn = sub.add_parser("learner", help="the one process that teaches the shared model")
    learn.add_argument("--store", required=True, help="redis://HOST:PORT/DB the instances share")
    learn.add_argument("--dir", help="snapshot folder (default RISKENGINE_MODEL_DIR)")
    learn.add_argument("--snapshot-every-s", type=float, default=10.0)
    learn.set_defaults(func=_learner)

    bt = sub.add_parser("backtest", help="live versus candidate rules on the same events")
    bt.add_argument("events", help="labelled JSONL (riskengine simulate, or your own)")
    bt.add_argument("--rules", required=True, help="the candidate ruleset YAML")
    bt.add_argument("--live", help="the live ruleset (default: RISKENGINE_RULES or shipped)")
    bt.add_argument("--target-challenge-rate", type=float, default=0.02)
    bt.add_argument("--warmup-days", type=float, default=14.0)
    bt.add_argument("--json", help="also write the figures as JSON (the tuning page reads it)")
    bt.set_defaults(func=_backtest)

    purge = sub.add_parser("purge", help="apply the retention periods to the store")
    purge.add_argument("--store", help="store URL (default RISKENGINE_STORE)")
    purge.add_argument("--now", help="RFC 3339 time to purge as of (default: now)")
    purge.set_defaults(func=_purge)

    store = sub.add_parser("store", help="the store's own upkeep")
    ssub = store.add_subparsers(dest="store_command", required=True)
    migrate = ssub.add_parser("migrate", help="move the store to the layout this release reads "
                              "(Redis: keys of the per-user layout; SQLite: the schema), once "
                              "after an upgrade; safe to repeat")
    migrate.add_argument("--store", help="store URL (default RISKENGINE_STORE)")
    migrate.set_defaults(func=_store_migrate)

    models = sub.add_parser("models", help="signed snapshots of the online model")
    msub = models.add_subparsers(dest="models_command", required=True)
    mlist = msub.add_parser("list", help="list snapshots, the active one starred")
    mlist.add_argument("--dir", help="snapshot folder (default RISKENGINE_MODEL_DIR)")
    mlist.set_defaults(func=_models_list)
    roll = msub.add_parser("rollback", help="make an earlier snapshot the active one")
    roll.add_argument("version")
    roll.add_argument("--dir", help="snapshot folder (default RISKENGINE_MODEL_DIR)")
    roll.set_defaults(func=_models_rollback)
    prom = msub.add_parser("promote", help="sign a model artifact (e.g. from 02-train.ipynb) "
                           "into the folder and make it the active one")
    prom.add_argument("artifact", help="ARTIFACT.joblib with its .card.json beside it")
    prom.add_argument("--dir", help="snapshot folder (default RISKENGINE_MODEL_DIR)")
    prom.set_defaults(func=_models_promote)

    from riskengine.adapters.auth import Scope

    keys = sub.add_parser("keys", help="API keys of the service's callers")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    file_help = "key file (default RISKENGINE_API_KEYS, riskengine-keys.json)"
    kcreate = ksub.add_parser("create", help="make a key and print it, once")
    kcreate.add_argument("--name", required=True, help="who uses it, e.g. checkout-service")
    kcreate.add_argument("--scope", action="append", required=True,
                         choices=[s.value for s in Scope],
                         help="repeat for several; admin implies the others")
    kcreate.add_argument("--tenant", action="append", required=True,
                         help="a tenant the key acts for; repeat for several, '*' for all")
    kcreate.add_argument("--file", help=file_help)
    kcreate.set_defaults(func=_keys_create)
    klist = ksub.add_parser("list", help="list keys (never their secrets)")
    klist.add_argument("--file", help=file_help)
    klist.set_defaults(func=_keys_list)
    krevoke = ksub.add_parser("revoke", help="revoke a key; running services stop taking it")
    krevoke.add_argument("key_id", help="the key's id (keys list), or the whole key")
    krevoke.add_argument("--file", help=file_help)
    krevoke.set_defaults(func=_keys_revoke)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except CommandError as exc:
        print(f"riskengine: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, never a traceback (RISKENGINE_DEBUG=1 shows it)
        if os.environ.get("RISKENGINE_DEBUG"):
            raise
        print(f"riskengine {args.command}: {_describe(exc)}", file=sys.stderr)
        return 2


def _describe(exc: BaseException) -> str:
    """What went wrong, in one line, without the exception's arguments when they could be a
    secret (a settings value)."""
    from riskengine.adapters.auth import KeyStoreError

    if isinstance(exc, ValidationError):
        return _one_line(exc)
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyStoreError | OSError):
        return text
    return f"{type(exc).__name__}: {text}"


if __name__ == "__main__":
    raise SystemExit(main())
