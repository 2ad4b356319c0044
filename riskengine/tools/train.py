"""Build the shipped default anomaly model by running the engine on simulated traffic.

``python -m riskengine.tools.train`` simulates a mall's traffic (its own seed, never one of the
benchmark's), replays it through an engine whose anomaly model starts empty, and saves that
model once it has learned: exactly what a fresh deployment's model would have become after
those weeks. The model learns only what the engine lets it learn (allowed successful logins
and passed step-ups), labels are not used anywhere, and the calibration is set from the
scores of the last fifth of the logins it learned from.
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
from riskengine.adapters.stores import MemoryStore
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
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    model, card = train(users=args.users, days=args.days, seed=args.seed)
    # The version names what the model is: its data, the rules that chose its lessons and
    # its hyper-parameters.
    identity = json.dumps([card["training"], card["hyper_parameters"]], sort_keys=True)
    version = f"hst-default-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"
    persistence.save(model, args.out, version=version, card=card)
    print(json.dumps({"model_version": version, **card["metrics"]}))


if __name__ == "__main__":
    main()
