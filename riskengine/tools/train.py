"""Build the shipped default anomaly model by running the engine on simulated traffic; fit
an outcome model on the outcomes such a run produces (``--outcome``).

``python -m riskengine.tools.train`` simulates a mall's traffic (its own seed, never one of the
benchmark's), replays it through an engine whose anomaly model starts empty, and saves that
model once it has learned: exactly what a fresh deployment's model would have become after
those weeks. The model learns only what the engine lets it learn (allowed successful logins
and passed step-ups), labels are not used anywhere, and the calibration is set from the
scores of the last fifth of the logins it learned from.

``python -m riskengine.tools.train --outcome`` replays simulated traffic the same way and
keeps every outcome the engine would teach its outcome model (step-up results fed back
through ``Engine.confirm``, a sample of verified-good logins as weighted negatives), after
the same poisoning guards; it fits ``models.outcome.OutcomeModel`` on the first 80 % of them
in time, measures how well its probabilities read as probabilities on the last 20 %, and
saves it with a card saying so. Nothing ships it by default: the hand-set combination is
the cold-start default, and ``riskengine models promote`` puts a trained one in service.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from features.ipintel import IpIntel
from models import persistence
from models.anomaly import AnomalyModel
from models.outcome import OutcomeModel, reliability
from riskengine.adapters.stores import MemoryStore
from riskengine.core.learning import OutcomeLesson, OutcomeTeacher
from riskengine.core.privacy import Pseudonymizer
from riskengine.core.rules import load_ruleset
from riskengine.service.scorer import Engine
from riskengine.tools.replay import Replayer
from riskengine.tools.simulate import Simulator

DEFAULT_OUT = Path(__file__).parents[1] / "models" / "artifacts" / persistence.SHIPPED_MODEL


class _Recording(AnomalyModel):
    """An anomaly model that remembers the score it gave each login it then learned."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.learned_scores_: list[float] = []

    def learn_one(self, values: Any) -> None:
        self.learned_scores_.append(self.score_one(values))
        super().learn_one(values)


def train(*, users: int, days: int, seed: int) -> tuple[AnomalyModel, dict[str, Any]]:
    recording = _Recording(seed=seed)
    engine = Engine(
        store=MemoryStore(),
        ruleset=load_ruleset(),
        model=recording,
        model_version="training",
        ipintel=IpIntel.bundled(),
        pseudonymizer=Pseudonymizer(b"training-only-key-not-a-secret"),
    )
    sim = Simulator(users=users, days=days, seed=seed)
    lines = list(sim.events())
    Replayer(engine, warmup_days=0, seed=seed).run(lines, progress=False)
    scores = recording.learned_scores_
    held_out = scores[int(len(scores) * 0.8):]
    model = AnomalyModel(n_trees=recording.n_trees, height=recording.height,
                         window_size=recording.window_size, seed=recording.seed)
    model.hst_, model.n_learned_ = recording.hst_, recording.n_learned_
    model.calibrate(held_out)
    ordered = sorted(held_out)
    card = {
        "training": {
            "source": "riskengine.tools.simulate traffic replayed through the default engine",
            "users": users,
            "days": days,
            "seed": seed,
            "events": len(lines),
            "learned": model.n_learned_,
            "window": [lines[0]["timestamp"], lines[-1]["timestamp"]],
            "data_fingerprint": _fingerprint(lines),
            "rules_version": engine.ruleset.label,
        },
        "metrics": {
            "held_out_learned_logins": len(held_out),
            "anomaly_p50": round(ordered[len(ordered) // 2], 4),
            "anomaly_p98": round(model.calibration_[0], 4),
            "anomaly_max": round(ordered[-1], 4),
        },
        "hyper_parameters": {"n_trees": model.n_trees, "height": model.height,
                             "window_size": model.window_size, "seed": model.seed},
    }
    return model, card


class _Collecting(OutcomeTeacher):
    """A teacher that keeps the outcome lessons instead of teaching them (the guards of
    ``core.feedback.outcome_lesson`` have run; the caps have not: it is our own traffic),
    and drops a lesson a later label undoes."""

    def __init__(self) -> None:
        super().__init__()
        self.lessons_: dict[str, OutcomeLesson] = {}

    def teach(self, model: Any, lesson: OutcomeLesson) -> bool:
        if lesson.undo:
            self.lessons_.pop(lesson.event_id, None)
        self.lessons_[lesson.event_id] = lesson
        return True


def train_outcome(*, users: int, days: int, seed: int, negative_rate: float = 0.05,
                  prior_strength: float = 0.02) -> tuple[OutcomeModel, dict[str, Any]]:
    """An outcome model fitted on the outcomes a replay of simulated traffic produces."""
    from sklearn.metrics import roc_auc_score

    collecting = _Collecting()
    engine = Engine(
        store=MemoryStore(),
        ruleset=load_ruleset(),
        model=persistence.load()[0],
        model_version="training",
        ipintel=IpIntel.bundled(),
        pseudonymizer=Pseudonymizer(b"training-only-key-not-a-secret"),
        outcome=OutcomeModel(), outcome_version="training", outcome_teacher=collecting,
        negative_rate=negative_rate,
    )
    lines = list(Simulator(users=users, days=days, seed=seed).events())
    Replayer(engine, warmup_days=0, seed=seed).run(lines, progress=False)
    lessons = sorted(collecting.lessons_.values(), key=lambda lesson: lesson.ts)
    if not lessons or not any(lesson.attack for lesson in lessons):
        raise ValueError("the replay produced no attack outcomes to learn from")
    cut = int(len(lessons) * 0.8)
    fit_on, held = lessons[:cut], lessons[cut:]
    model = OutcomeModel(prior_strength=prior_strength).fit(
        [lesson.inputs for lesson in fit_on], [lesson.attack for lesson in fit_on],
        [lesson.weight for lesson in fit_on])
    probas = [model.proba_one(lesson.inputs) for lesson in held]
    labels = [int(lesson.attack) for lesson in held]
    weights = [lesson.weight for lesson in held]
    calibration = reliability(probas, labels)
    both = len(set(labels)) == 2
    card = {
        "training": {
            "source": "outcomes of riskengine.tools.simulate traffic replayed through the "
                      "default engine: step-up results (customers pass 97 %, attackers fail "
                      "unless a SIM swap gets the SMS code, which the guards refuse) and "
                      f"verified-good allowed logins sampled at {negative_rate:.0%} (weight "
                      f"{1 / negative_rate:g}); a biased sample: only challenged logins have "
                      "step-up results",
            "users": users, "days": days, "seed": seed, "events": len(lines),
            "window": [lines[0]["timestamp"], lines[-1]["timestamp"]],
            "data_fingerprint": _fingerprint(lines),
            "rules_version": engine.ruleset.label,
            "outcomes": len(lessons), "fitted_on": len(fit_on),
            "attacks": sum(lesson.attack for lesson in lessons),
        },
        "metrics": {
            "held_out_outcomes": len(held),
            "held_out_attacks": sum(labels),
            "roc_auc": round(float(roc_auc_score(labels, probas, sample_weight=weights)), 4)
            if both else None,
            "brier": round(calibration["brier"], 5),
            "ece": round(calibration["ece"], 5),
            "reliability": calibration["bins"],
        },
        "weights": {"leak": round(model.leak_, 6),
                    **{k: round(v, 4) for k, v in sorted(model.weights_.items())}},
        "hyper_parameters": {"prior_strength": prior_strength, "negative_rate": negative_rate},
    }
    return model, card


def _fingerprint(lines: list[dict[str, Any]]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(json.dumps(line, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=800)
    parser.add_argument("--days", type=int, default=45)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default=None)
    parser.add_argument("--outcome", action="store_true",
                        help="fit an outcome model instead (written to --out, by default "
                             "outcome-<hash>.joblib in the current folder)")
    args = parser.parse_args()
    if args.outcome:
        outcome, card = train_outcome(users=args.users, days=args.days, seed=args.seed)
        identity = json.dumps([card["training"], card["hyper_parameters"]], sort_keys=True)
        version = f"outcome-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"
        persistence.save(outcome, args.out or f"{version}.joblib", version=version, card=card)
        print(json.dumps({"model_version": version, **{k: v for k, v in card[
            "metrics"].items() if k != "reliability"}}))
        return
    args.out = args.out or str(DEFAULT_OUT)
    model, card = train(users=args.users, days=args.days, seed=args.seed)
    # The version names what the model is: its data, the rules that chose its lessons and
    # its hyper-parameters.
    identity = json.dumps([card["training"], card["hyper_parameters"]], sort_keys=True)
    version = f"hst-default-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"
    persistence.save(model, args.out, version=version, card=card)
    print(json.dumps({"model_version": version, **card["metrics"]}))


if __name__ == "__main__":
    main()
