"""Every shipped rule fires on its case and stays silent on its near misses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from riskengine.core.rules import Outcome, Ruleset, load_ruleset, render_message

CASES: dict[str, dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "shipped_rule_cases.yaml").read_text()
)
SHIPPED = load_ruleset()


def _outcome(ruleset: Ruleset, rule_id: str, values: dict[str, Any]) -> Outcome:
    [result] = [r for r in ruleset.evaluate(values) if r.rule.id == rule_id]
    return result.outcome


def test_every_shipped_rule_has_a_hit_and_a_miss_case() -> None:
    ids = {rule.id for rule in SHIPPED.rules}
    covered_hit = {name.split("#")[0] for name, case in CASES.items() if "hit" in case}
    covered_miss = {name.split("#")[0] for name, case in CASES.items() if case.get("miss")}
    assert ids - covered_hit == set()
    assert ids - covered_miss == set()
    assert covered_hit - ids == set(), "cases for rules that are not shipped"


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if "hit" in c])
def test_rule_hits(name: str) -> None:
    rule_id = name.split("#")[0]
    assert _outcome(SHIPPED, rule_id, CASES[name]["hit"]) is Outcome.HIT


@pytest.mark.parametrize(
    ("name", "values"),
    [(n, v) for n, c in CASES.items() for v in c.get("miss", [])],
)
def test_rule_does_not_hit(name: str, values: dict[str, Any]) -> None:
    assert _outcome(SHIPPED, name.split("#")[0], values) is Outcome.NO_HIT


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if "hit" in c])
def test_hit_messages_render_observed_values(name: str) -> None:
    rule_id = name.split("#")[0]
    [result] = [r for r in SHIPPED.evaluate(CASES[name]["hit"]) if r.rule.id == rule_id]
    message = render_message(result.rule, result.observed)
    assert message and "{" not in message
    assert set(result.observed) >= {f for f in result.rule.features if f in CASES[name]["hit"]}


def test_shipped_ruleset_is_versioned_and_hashed() -> None:
    assert SHIPPED.version
    assert len(SHIPPED.sha256) == 64
    assert SHIPPED.label.startswith(SHIPPED.version + "+")
    assert 0 < SHIPPED.thresholds.challenge < SHIPPED.thresholds.deny <= 1
