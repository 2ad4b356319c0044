"""The golden run: a fixed simulation replayed through the engine, one line per decision.

300 customers x 30 days of the simulator (seed 16, with the signal scenarios and their
lists), a live ruleset with allow and deny lists, a shadow ruleset beside it, the shipped
model learning as it goes. ``decisions.jsonl.gz`` beside this file holds what the engine
answered; ``test_golden.py`` requires the same answers, so a change that should not change
behaviour can prove it did not.

Regenerate (only for a change that means to alter decisions, and say so in its commit)::

    .venv/bin/python -m tests.golden.run --write
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from riskengine.core.rules import with_thresholds
from riskengine.service.build import build_engine
from riskengine.service.settings import Settings
from riskengine.tools.replay import Replayer
from riskengine.tools.simulate import Simulator

USERS, DAYS, SEED = 300, 30, 16
GOLDEN = Path(__file__).with_name("decisions.jsonl.gz")
SHIPPED = Path(__file__).parents[2] / "riskengine" / "data" / "default_rules.yaml"

LIVE_LISTS = """
lists:
  allow:
    - {asn: 24400, note: a broadband provider the shop trusts}
  deny:
    - {cidr: 45.83.137.0/24, note: a hosting range seen attacking}
"""
SHADOW_LISTS = """
lists:
  deny:
    - {asn: 132203, note: a cloud provider}
"""


def _ruleset(text: str, lists: str) -> str:
    # The shipped file ends with its rules; its own (empty) lists block is replaced.
    lines, out, skipping = text.splitlines(keepends=True), [], False
    for line in lines:
        if line.startswith("lists:"):
            skipping = True
            continue
        if skipping and line[:1] not in (" ", "\t", "\n", "#"):
            skipping = False
        if not skipping:
            out.append(line)
    return "".join(out) + lists


def decisions(folder: Path) -> Iterator[dict[str, Any]]:
    """Replay the golden run; yields one record per event in the order scored."""
    shipped = SHIPPED.read_text(encoding="utf-8")
    live, shadow = folder / "live.yaml", folder / "shadow.yaml"
    live.write_text(_ruleset(shipped, LIVE_LISTS), encoding="utf-8")
    shadow.write_text(_ruleset(with_thresholds(shipped, challenge=0.4, deny=0.85,
                                               version="golden-shadow"), SHADOW_LISTS),
                      encoding="utf-8")
    sim = Simulator(users=USERS, days=DAYS, seed=SEED, signals=True)
    events = list(sim.events())
    lists = sim.write_signal_files(folder / "signals")
    settings = Settings(env="test", store="memory:", rules=live, shadow_rules=shadow,
                        _env_file=None, **lists)
    engine = build_engine(settings).engine
    out: list[dict[str, Any]] = []

    def observe(scored: Any, scenario: str, user: str) -> None:
        body = scored.body
        out.append({"event_id": body["event_id"], "decision": body["decision"],
                    "score": round(float(body["score"]), 6), "challenge": body["challenge"],
                    "reasons": [r["code"] for r in body["reasons"]]})

    Replayer(engine, warmup_days=0, seed=SEED).run(events, progress=False, observe=observe)
    for record in out:
        # Stored under the event id's pseudonym; the answer echoes the caller's id.
        stored = engine.store.get_decision("default",
                                           engine.event_key("default", record["event_id"]))
        shadowed = (stored.decision.get("shadow") if stored is not None else None) or {}
        record["shadow"] = [shadowed.get("decision"), shadowed.get("reasons")]
        yield record


def read_golden() -> list[dict[str, Any]]:
    with gzip.open(GOLDEN, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str]) -> int:
    import tempfile

    if argv != ["--write"]:
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        records = list(decisions(Path(tmp)))
    # mtime=0: the same decisions give the same bytes.
    with open(GOLDEN, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        for r in records:
            f.write((json.dumps(r, separators=(",", ":")) + "\n").encode())
    print(f"{len(records)} decisions written to {GOLDEN}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
