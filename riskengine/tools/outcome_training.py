"""Train the outcome model's base on labelled logins of simulated worlds, and ship it.

The engine's final score is the outcome model (``models.outcome.OutcomeModel``): a noisy-OR
that learns from the deployment's own outcomes. Out of the box it starts from a base trained
here: gradient-boosted trees (``models.boosted``, monotonic where a feature's direction is
known, ``models.outcome.BASE_FEATURES``) fitted on the logins of the *tuning* worlds
(``riskengine.tools.worlds``, seeds 1-20), replayed through the engine with the shipped
ruleset so that every login carries the features the service computes, and labelled by the
simulator (customer or which attack). Each attack scenario weighs as much as the others
(stuffing's thousands of failures would otherwise teach the trees nothing but stuffing),
and all attacks together as much as ``attack_share`` of the customers' logins.

The held-out worlds (1001 and up) are never read here: ``bench/detection.py`` reports on
them. The model is versioned by its training worlds and a digest of the fitted arrays;
``make outcome-model`` retrains and writes ``models/artifacts/outcome-default.joblib``
(about 40 minutes on 2 cores; the replays are not bit-for-bit repeatable, as pseudonym keys
differ between runs and which logins teach the online model with them, so a retrained base
is an equivalent model, not the same bytes).

    .venv/bin/python -m riskengine.tools.outcome_training --worlds 1-12 --validate 13-14
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from models import persistence
from models.boosted import BoostedTrees, Feature, fit
from models.outcome import BASE, BASE_FEATURES, OutcomeModel

CUSTOMER = "customer"
SHIPPED = Path(__file__).resolve().parents[2] / "models" / "artifacts" / \
    persistence.SHIPPED_OUTCOME_MODEL
# All attacks together weigh this share of the customers' logins in training.
ATTACK_SHARE = 0.05
HYPER = {"max_iter": 150, "max_depth": 5, "learning_rate": 0.1, "min_samples_leaf": 40,
         "l2_regularization": 1.0}


def collect(world_seed: int, *, seed: int = 1, users: int = 1000, days: int = 60,
            warmup_days: int = 14) -> list[dict[str, Any]]:
    """One world's logins after the warm-up, as the engine saw them: the feature values and
    ``_scenario`` (``customer`` or the attack). Replayed through the engine as shipped
    with the hand-set combination (no trained base), so the training logins do not depend
    on an earlier base."""
    from riskengine.service.build import build_engine
    from riskengine.service.settings import Settings
    from riskengine.tools.replay import Replayer
    from riskengine.tools.simulate import Simulator
    from riskengine.tools.worlds import World

    built = build_engine(Settings(env="development", store="memory:", _env_file=None))
    built.engine.outcome = OutcomeModel()  # the hand-set combination: not ready
    world = World.draw(world_seed)
    rows: list[dict[str, Any]] = []

    def observe(scored: Any, scenario: str, user: str) -> None:
        if scored.features is not None:
            rows.append({**scored.features.mapping, "_scenario": scenario,
                         "_world": world_seed})

    events = Simulator(users=users, days=days, seed=seed, world=world).events()
    Replayer(built.engine, seed=seed, warmup_days=warmup_days).run(
        events, progress=False, observe=observe)
    return rows


def weights(scenarios: Sequence[str], *, attack_share: float = ATTACK_SHARE) -> list[float]:
    """Sample weights: customers 1 each; each attack scenario the same total, all of them
    together ``attack_share`` of the customers' count."""
    counts = Counter(scenarios)
    customers = counts.pop(CUSTOMER, 0)
    per_scenario = attack_share * max(customers, 1) / max(len(counts), 1)
    return [1.0 if s == CUSTOMER else per_scenario / counts[s] for s in scenarios]


def present(rows: Sequence[Mapping[str, Any]], features: Sequence[Feature]) -> list[Feature]:
    """The features some training login has a value for (one that never has one cannot be
    learned, and scikit-learn's binning refuses a column of missing values only)."""
    return [f for f in features if any(r.get(f.name) is not None for r in rows)]


def judged(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The logins a trained base judges: those of accounts with a history (the engine
    leaves an account's first logins to the hand-set rules)."""
    return [r for r in rows if not r.get("user_is_new")]


def train(rows: Sequence[Mapping[str, Any]], **hyper: Any) -> BoostedTrees:
    """The base: boosted trees over the features present in the logins it will judge,
    attacks labelled 1."""
    rows = judged(rows)
    scenarios = [str(r["_scenario"]) for r in rows]
    labels = [int(s != CUSTOMER) for s in scenarios]
    return fit(rows, labels, present(rows, BASE_FEATURES), sample_weight=weights(scenarios),
               **{**HYPER, **hyper})


def outcome_model(base: BoostedTrees) -> OutcomeModel:
    """The outcome model that starts as the trained base: the base's multiplier 1, every
    rule's, the anomaly model's and the features' 0 (the base was trained on the evidence
    they speak of), ready at once; outcomes move them from there."""
    return OutcomeModel(base=base, priors={BASE: 1.0}, default_prior=0.0,
                        min_outcomes=0, min_attacks=0)


def evaluate(base: BoostedTrees, rows: Sequence[Mapping[str, Any]],
             rates: Iterable[float] = (0.006, 0.008, 0.012)) -> dict[str, Any]:
    """Per scenario, the share of its logins the base alone scores above the threshold that
    flags ``rate`` of the customers' logins (and that threshold), over the logins it judges."""
    rows = judged(rows)
    customers = sorted(base.proba(r) for r in rows if r["_scenario"] == CUSTOMER)
    out: dict[str, Any] = {}
    for rate in rates:
        cut = customers[min(len(customers) - 1, int(len(customers) * (1 - rate)))]
        caught: dict[str, list[int]] = {}
        for r in rows:
            if r["_scenario"] != CUSTOMER:
                caught.setdefault(str(r["_scenario"]), []).append(int(base.proba(r) > cut))
        out[f"{rate:.1%}"] = {"threshold": round(cut, 4), "caught": {
            s: round(statistics.fmean(v), 4) for s, v in sorted(caught.items())}}
    return out


def digest(base: BoostedTrees) -> str:
    return hashlib.sha256(base.nodes_.tobytes()).hexdigest()[:12]


def _world_list(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        out += list(range(int(lo), int(hi or lo) + 1))
    return out


def _collect_one(args: tuple[int, int, int, int]) -> list[dict[str, Any]]:
    world, seed, users, days = args
    return collect(world, seed=seed, users=users, days=days)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", default="1-12", help="tuning worlds to train on (1-20)")
    parser.add_argument("--validate", default="13-14",
                        help="tuning worlds to report on (not trained on)")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default=str(SHIPPED))
    args = parser.parse_args(argv)
    train_worlds, check_worlds = _world_list(args.worlds), _world_list(args.validate)
    if any(w > 1000 for w in train_worlds + check_worlds):
        parser.error("worlds above 1000 are held out for reports; train on tuning worlds")
    started = time.perf_counter()
    jobs = [(w, args.seed, args.users, args.days) for w in train_worlds + check_worlds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        by_world = dict(zip(train_worlds + check_worlds, pool.map(_collect_one, jobs),
                            strict=True))
    rows = [r for w in train_worlds for r in by_world[w]]
    base = train(rows)
    base.warm()
    report = {str(w): evaluate(base, by_world[w]) for w in check_worlds}
    version = f"outcome-gbt-{digest(base)}"
    card = {
        "training": {
            "source": "riskengine.tools.outcome_training: simulated tuning worlds, replayed "
                      "through the shipped ruleset (hand-set combination), labelled by the "
                      "simulator",
            "command": "python -m riskengine.tools.outcome_training "
                       + " ".join(sys.argv[1:] if argv is None else argv),
            "worlds": train_worlds, "seed": args.seed, "users": args.users,
            "days": args.days, "logins": len(rows),
            "attacks": sum(r["_scenario"] != CUSTOMER for r in rows),
            "attack_share": ATTACK_SHARE, "hyper_parameters": HYPER,
            "base_features": [f.name for f in base.features]},
        "validation": {"worlds": check_worlds, "by_world": report},
    }
    persistence.save(outcome_model(base), args.out, version=version, card=card)
    print(f"{version}: {len(rows)} logins from worlds {args.worlds}, "
          f"{time.perf_counter() - started:.0f} s; written to {args.out}")
    for w, figures in report.items():
        for rate, got in figures.items():
            print(f"  world {w} at {rate} of customers (p > {got['threshold']}): "
                  + ", ".join(f"{s} {v:.0%}" for s, v in got["caught"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
