"""Shadow mode: how a candidate ruleset's decisions compare with the live ones.

The engine decides every request with both rulesets on the same features and model score;
the live decision is enforced, the candidate's is recorded (with the stored decision, as
``shadow``) and counted here, so that security staff see what a change would do before it
ships.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from riskengine.core.policy import Decision

ACTIONS = ("allow", "challenge", "deny")


class ShadowStats:
    """Counts of (live, candidate) decision pairs since the candidate was loaded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pairs: Counter[tuple[str, str]] = Counter()
        self._tenants: Counter[str] = Counter()
        self._changed_reasons: Counter[str] = Counter()
        self.live_version: str | None = None
        self.candidate_version: str | None = None

    def add(self, tenant: str, live: Decision, candidate: Decision) -> None:
        with self._lock:
            self.live_version, self.candidate_version = live.rules_version, candidate.rules_version
            self._pairs[(live.action.value, candidate.action.value)] += 1
            self._tenants[tenant] += 1
            if live.action != candidate.action:
                self._changed_reasons.update(r.code for r in candidate.reasons)

    def report(self) -> dict[str, Any]:
        """Agreement, the confusion matrix, and what each side challenged or denied."""
        with self._lock:
            pairs = dict(self._pairs)
            total = sum(pairs.values())
            agree = sum(n for (a, b), n in pairs.items() if a == b)

            def side(i: int) -> dict[str, int]:
                return {action: sum(n for k, n in pairs.items() if k[i] == action)
                        for action in ACTIONS}

            return {
                "live_rules": self.live_version,
                "candidate_rules": self.candidate_version,
                "decisions": total,
                "agreement": agree / total if total else None,
                "live": side(0),
                "candidate": side(1),
                "matrix": {f"{a}->{b}": pairs.get((a, b), 0) for a in ACTIONS for b in ACTIONS},
                "tenants": dict(self._tenants),
                "reasons_where_candidate_differs": dict(self._changed_reasons.most_common(20)),
            }
