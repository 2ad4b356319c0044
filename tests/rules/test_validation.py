"""A ruleset is validated on load: errors name the rule, the field and the line."""

from __future__ import annotations

import textwrap

import pytest

from riskengine.core.rules import Outcome, RulesetError, parse_ruleset

HEADER = """\
version: "t1"
thresholds: {challenge: 0.5, deny: 0.9}
rules:
"""


def _rules(body: str) -> str:
    return HEADER + textwrap.indent(textwrap.dedent(body), "  ")


GOOD_RULE = """\
- id: far_away
  name: Far away
  description: Far from the last login.
  when: {feature: geo_distance_km, op: gt, value: 1000}
  score: 0.3
"""


def test_a_good_ruleset_loads() -> None:
    rs = parse_ruleset(_rules(GOOD_RULE))
    assert [r.id for r in rs.rules] == ["far_away"]
    assert rs.rules[0].line == 4


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (GOOD_RULE.replace("geo_distance_km", "geo_distance_miles"),
         ["far_away", "line 4", "'when'", "unknown feature 'geo_distance_miles'"]),
        (GOOD_RULE.replace("op: gt", "op: bigger"),
         ["far_away", "'when'", "unknown operator 'bigger'"]),
        # An operator given as a list was a TypeError (unhashable): the admin reload's 500.
        (GOOD_RULE.replace("op: gt", "op: [gt]"),
         ["far_away", "'when'", "unknown operator '['gt']'"]),
        (GOOD_RULE.replace("value: 1000", "value: far"),
         ["far_away", "'when'", "compares numbers"]),
        (GOOD_RULE.replace("score: 0.3", "score: 3"), ["far_away", "'score'"]),
        (GOOD_RULE.replace("id: far_away", "id: Far Away"), ["'id'"]),
        (GOOD_RULE + "  action: block\n", ["far_away", "'action'"]),
        (GOOD_RULE + "  challenge: phone_call\n", ["far_away", "'challenge'"]),
        (GOOD_RULE + "  colour: red\n", ["far_away", "'colour'", "unknown field"]),
        (GOOD_RULE + GOOD_RULE, ["far_away", "line 9", "duplicate id"]),
        (GOOD_RULE.replace("  description: Far from the last login.\n", ""),
         ["far_away", "'description'"]),
        (GOOD_RULE + "  message: 'Far: {geo_distance_km.__class__}'\n",
         ["far_away", "'message'"]),
        (GOOD_RULE.replace("{feature: geo_distance_km, op: gt, value: 1000}",
                           "{feature: new_device, op: is_true, value: 1}"),
         ["far_away", "takes no value"]),
        (GOOD_RULE.replace("{feature: geo_distance_km, op: gt, value: 1000}",
                           "{feature: geo_distance_km, op: is_true}"),
         ["far_away", "needs a bool feature"]),
    ],
)
def test_invalid_rules_are_refused_with_the_rule_and_field_named(
    body: str, expected: list[str]
) -> None:
    with pytest.raises(RulesetError) as err:
        parse_ruleset(_rules(body), source="candidate.yaml")
    for fragment in expected:
        assert fragment in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "version: t\nthresholds: {challenge: 0.9, deny: 0.5}\nrules: []\n",
        "version: t\nthresholds: {challenge: 0.5, deny: 0.9}\nrules: []\n",
        "just text",
        "version: t\nthresholds: {challenge: 0.5, deny: 0.9}\nmodel: {weight: 2}\nrules: [1]\n",
        "rules: [",
    ],
)
def test_invalid_ruleset_structure_is_refused(text: str) -> None:
    with pytest.raises(RulesetError):
        parse_ruleset(text)


def test_a_rule_that_raises_is_an_error_outcome_not_a_crash() -> None:
    rs = parse_ruleset(_rules(GOOD_RULE.replace(
        "{feature: geo_distance_km, op: gt, value: 1000}",
        "{feature: ip_country, op: in, value: [DE, FR]}")))
    # an unhashable observed value makes the set lookup raise inside the rule
    [result] = rs.evaluate({"ip_country": ["not", "hashable"]})
    assert result.outcome is Outcome.ERROR
    assert result.error


def test_disabled_rules_are_validated_but_not_run() -> None:
    rs = parse_ruleset(_rules(GOOD_RULE + "  enabled: false\n"))
    assert rs.rules == ()
