"""Every condition operator: accepted by validation, and evaluated as documented.

One row per (operator, observed value, rule value, outcome). The observed values go beyond
the feature's kind on purpose (None, bools, ints, floats, strings, lists): an operator whose
meaning drifts, or an operator added without rows here, fails a test.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from features.extract import FeatureVector
from riskengine.core.rules import (
    OPERATORS,
    Outcome,
    RulesetError,
    Takes,
    _checked,
    parse_ruleset,
)

HIT, MISS, ERROR = Outcome.HIT, Outcome.NO_HIT, Outcome.ERROR
MISSING = object()  # the feature is not in the values at all
NO_VALUE = object()  # the condition has no `value`

# A feature of the rule value's kind; operators without a value test a bool feature.
FEATURE_FOR = {bool: "new_device", int: "user_logins_count", float: "days_since_last_login",
               str: "ip_country"}

ROWS: list[tuple[str, Any, Any, Outcome]] = [
    # eq / ne: Python equality, and never true for a missing value
    ("eq", "DE", "DE", HIT),
    ("eq", "SE", "DE", MISS),
    ("eq", None, "DE", MISS),
    ("eq", MISSING, "DE", MISS),
    ("eq", ["DE"], "DE", MISS),
    ("eq", 3, 3, HIT),
    ("eq", 3.0, 3, HIT),
    ("eq", "3", 3, MISS),
    ("eq", 0.5, 0.5, HIT),
    ("eq", False, False, HIT),
    ("eq", None, False, MISS),
    ("eq", 0, False, HIT),  # equality, not identity: 0 == False
    ("ne", "SE", "DE", HIT),
    ("ne", "DE", "DE", MISS),
    ("ne", None, "DE", MISS),
    ("ne", MISSING, "DE", MISS),
    ("ne", 1.5, 2, HIT),
    ("ne", 2.0, 2, MISS),
    ("ne", True, False, HIT),
    ("ne", None, True, MISS),
    ("ne", True, 1, MISS),
    # gt / gte / lt / lte: only an int or float is compared; None, bools and anything else
    # are never true (no error, no True-is-1)
    ("gt", 5, 3, HIT),
    ("gt", 3, 3, MISS),
    ("gt", 3.5, 3, HIT),
    ("gt", 2.9, 3, MISS),
    ("gt", 0.6, 0.5, HIT),
    ("gt", float("inf"), 3, HIT),
    ("gt", float("nan"), 0, MISS),
    ("gt", None, 3, MISS),
    ("gt", MISSING, 3, MISS),
    ("gt", True, 0, MISS),
    ("gt", "5", 3, MISS),
    ("gt", [5], 3, MISS),
    ("gte", 3, 3, HIT),
    ("gte", 3.0, 3, HIT),
    ("gte", 2, 3, MISS),
    ("gte", 0.5, 0.5, HIT),
    ("gte", None, 0, MISS),
    ("gte", False, 0, MISS),
    ("gte", True, 1, MISS),
    ("gte", "3", 3, MISS),
    ("lt", 2, 3, HIT),
    ("lt", 3, 3, MISS),
    ("lt", -1, 0, HIT),
    ("lt", 0.4, 0.5, HIT),
    ("lt", None, 3, MISS),
    ("lt", MISSING, 3, MISS),
    ("lt", False, 3, MISS),
    ("lt", "2", 3, MISS),
    ("lte", 3, 3, HIT),
    ("lte", 4, 3, MISS),
    ("lte", 2.5, 2.5, HIT),
    ("lte", 0, 0.5, HIT),
    ("lte", None, 3, MISS),
    ("lte", False, 3, MISS),
    ("lte", [1], 3, MISS),
    # in / not_in: set membership, never true for a missing value; an unhashable observed
    # value is an error outcome
    ("in", "DE", ["DE", "FR"], HIT),
    ("in", "SE", ["DE", "FR"], MISS),
    ("in", None, ["DE", "FR"], MISS),
    ("in", MISSING, ["DE"], MISS),
    ("in", 3, [1, 2, 3], HIT),
    ("in", 3.0, [1, 2, 3], HIT),
    ("in", "3", [1, 2, 3], MISS),
    ("in", ["DE"], ["DE"], ERROR),
    ("not_in", "SE", ["DE", "FR"], HIT),
    ("not_in", "DE", ["DE", "FR"], MISS),
    ("not_in", None, ["DE", "FR"], MISS),
    ("not_in", MISSING, ["DE"], MISS),
    ("not_in", 4, [1, 2, 3], HIT),
    ("not_in", 2, [1, 2, 3], MISS),
    ("not_in", ["SE"], ["DE"], ERROR),
    # is_true / is_false / is_null / not_null: identity, no truthiness
    ("is_true", True, NO_VALUE, HIT),
    ("is_true", False, NO_VALUE, MISS),
    ("is_true", None, NO_VALUE, MISS),
    ("is_true", MISSING, NO_VALUE, MISS),
    ("is_true", 1, NO_VALUE, MISS),
    ("is_true", 1.0, NO_VALUE, MISS),
    ("is_true", "true", NO_VALUE, MISS),
    ("is_true", [True], NO_VALUE, MISS),
    ("is_false", False, NO_VALUE, HIT),
    ("is_false", True, NO_VALUE, MISS),
    ("is_false", None, NO_VALUE, MISS),
    ("is_false", MISSING, NO_VALUE, MISS),
    ("is_false", 0, NO_VALUE, MISS),
    ("is_false", 0.0, NO_VALUE, MISS),
    ("is_false", "", NO_VALUE, MISS),
    ("is_false", [], NO_VALUE, MISS),
    ("is_null", None, NO_VALUE, HIT),
    ("is_null", MISSING, NO_VALUE, HIT),
    ("is_null", False, NO_VALUE, MISS),
    ("is_null", 0, NO_VALUE, MISS),
    ("is_null", "", NO_VALUE, MISS),
    ("is_null", [], NO_VALUE, MISS),
    ("not_null", None, NO_VALUE, MISS),
    ("not_null", MISSING, NO_VALUE, MISS),
    ("not_null", False, NO_VALUE, HIT),
    ("not_null", 0, NO_VALUE, HIT),
    ("not_null", 0.0, NO_VALUE, HIT),
    ("not_null", "", NO_VALUE, HIT),
    ("not_null", [], NO_VALUE, HIT),
]


def _feature_for(value: Any) -> str:
    if value is NO_VALUE:
        return FEATURE_FOR[bool]
    return FEATURE_FOR[type(value[0] if isinstance(value, list) else value)]


def _ruleset_text(condition: dict[str, Any]) -> str:
    return yaml.safe_dump({
        "version": "t1",
        "thresholds": {"challenge": 0.5, "deny": 0.9},
        "rules": [{"id": "the_rule", "name": "The rule", "description": "One condition.",
                   "when": condition, "score": 0.3}],
    })


def _condition(op: str, value: Any) -> dict[str, Any]:
    condition = {"feature": _feature_for(value), "op": op}
    if value is not NO_VALUE:
        condition["value"] = value
    return condition


def test_every_operator_has_rows() -> None:
    assert {op for op, *_ in ROWS} == set(OPERATORS)


@pytest.mark.parametrize(("op", "observed", "value", "outcome"), ROWS)
def test_operator_evaluates_as_documented(op: str, observed: Any, value: Any,
                                          outcome: Outcome) -> None:
    condition = _condition(op, value)
    ruleset = parse_ruleset(_ruleset_text(condition))  # validation accepts the condition
    values = {} if observed is MISSING else {condition["feature"]: observed}

    [result] = ruleset.evaluate(FeatureVector(values))
    # the closures, the reference the ruleset's kernel is held to
    reference = _checked(ruleset.rules[0], values)

    assert result.outcome is outcome is reference.outcome
    assert (result.error is not None) == (outcome is ERROR)


@pytest.mark.parametrize("op", list(OPERATORS))
def test_an_operator_refuses_a_condition_without_its_value_or_with_one_it_does_not_take(
    op: str,
) -> None:
    condition = _condition(op, next(value for name, _, value, _ in ROWS if name == op))
    if OPERATORS[op].takes is Takes.NOTHING:
        condition["value"] = True
        expected = f"operator '{op}' takes no value"
    else:
        del condition["value"]
        expected = f"operator '{op}' needs a value"

    with pytest.raises(RulesetError, match=expected):
        parse_ruleset(_ruleset_text(condition))


@pytest.mark.parametrize(("op", "refused"), [
    ("is_true", True), ("is_false", True), ("is_null", False), ("not_null", False),
])
def test_only_is_true_and_is_false_need_a_bool_feature(op: str, refused: bool) -> None:
    text = _ruleset_text({"feature": "ip_country", "op": op})
    if refused:
        with pytest.raises(RulesetError, match=f"'{op}' needs a bool feature, 'ip_country'"):
            parse_ruleset(text)
    else:
        parse_ruleset(text)
