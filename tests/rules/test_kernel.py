"""The ruleset's kernel (every rule's outcome in one call) against the rules' closures, the
reference: the same outcome for every rule, on the shipped ruleset, over feature values of
every kind and of kinds the features do not have."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from features.catalog import FEATURES
from riskengine.core.rules import Outcome, _checked, load_ruleset, parse_ruleset

SHIPPED = load_ruleset()
# Values near the shipped rules' thresholds, and of every kind a feature may (not) hold.
_NUMBERS = st.one_of(st.integers(-3, 200), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0, 1, 2, 3, 5, 10, 20, 60, 0.5, 0.9, 1000.0, 2000.0]))
_ANY = st.one_of(st.none(), st.booleans(), _NUMBERS, st.text(max_size=4),
                 st.sampled_from(["DE", "password", "sms_otp", "login", "hosting", "ios"]))
_VALUES = st.fixed_dictionaries(
    {}, optional={spec.name: (st.one_of(st.none(), st.booleans(), _ANY)
                              if spec.kind == "bool" else _ANY) for spec in FEATURES})


@settings(max_examples=1000, deadline=None)
@given(_VALUES)
def test_the_kernel_gives_every_rule_the_closures_outcome(values: dict[str, Any]) -> None:
    reference = [_checked(rule, values) for rule in SHIPPED.rules]
    if any(r.outcome is Outcome.ERROR for r in reference):
        return  # an error is left to the closures, rule by rule (below)
    assert SHIPPED.kernel(values) == tuple(r.outcome for r in reference)
    assert SHIPPED.evaluate(values) == reference


def test_a_rule_that_raises_is_found_by_the_closures() -> None:
    rules = parse_ruleset("""
version: 1
thresholds: {challenge: 0.5, deny: 0.9}
rules:
  - id: first_rule
    name: First
    description: Hits on a new device.
    when: {feature: new_device, op: is_true}
    score: 0.3
  - id: country_rule
    name: Country
    description: A country in the list.
    when: {feature: ip_country, op: in, value: [DE, FR]}
    score: 0.3
""")
    values = {"new_device": True, "ip_country": ["not", "hashable"]}

    first, broken = rules.evaluate(values)

    assert first.outcome is Outcome.HIT
    assert broken.outcome is Outcome.ERROR and broken.error


def test_every_shipped_rule_is_in_the_kernel_as_an_expression() -> None:
    assert all(rule.source is not None for rule in SHIPPED.rules)
    assert len(SHIPPED.kernel({})) == len(SHIPPED.rules)
