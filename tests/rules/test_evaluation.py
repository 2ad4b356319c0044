"""Evaluating a ruleset: every rule's outcome, the values it saw, and its message."""

from __future__ import annotations

from features.extract import FeatureVector
from riskengine.core.rules import Outcome, parse_ruleset, render_message

RULES = parse_ruleset("""\
version: "t1"
thresholds: {challenge: 0.5, deny: 0.9}
rules:
  - id: far_away
    name: Far away
    description: Far from the last login.
    when: {all: [{feature: geo_distance_km, op: gt, value: 1000},
                 {feature: new_country, op: is_true}]}
    score: 0.3
    message: "{geo_distance_km:,.0f} km away"
  - id: listed_country
    name: Listed country
    description: A country on the list.
    when: {feature: ip_country, op: in, value: [DE, FR]}
    score: 0.2
  - id: new_device
    name: New device
    description: A device not seen before.
    when: {feature: new_device, op: is_true}
    score: 0.1
    message: "A {{new}} device"
""")


def test_each_result_holds_the_values_its_rule_reads() -> None:
    values = FeatureVector({"geo_distance_km": 2500.0, "new_country": True, "ip_country": "SE",
                            "new_device": False, "user_is_new": False})

    far, listed, device = RULES.evaluate(values)

    assert (far.outcome, listed.outcome, device.outcome) == (
        Outcome.HIT, Outcome.NO_HIT, Outcome.NO_HIT)
    assert far.observed == {"geo_distance_km": 2500.0, "new_country": True}
    assert listed.observed == {"ip_country": "SE"}
    assert device.observed == {"new_device": False}
    assert render_message(far.rule, far.observed) == "2,500 km away"


def test_a_rule_that_raises_leaves_the_others_evaluated() -> None:
    values = {"geo_distance_km": 2500.0, "new_country": True, "ip_country": ["unhashable"],
              "new_device": True}

    far, listed, device = RULES.evaluate(values)

    assert (far.outcome, listed.outcome, device.outcome) == (
        Outcome.HIT, Outcome.ERROR, Outcome.HIT)
    assert listed.error and "unhashable" in listed.error
    assert listed.observed == {"ip_country": ["unhashable"]}
    assert far.error is None and device.error is None


def test_a_message_without_fields_renders_as_written() -> None:
    _, _, device = RULES.evaluate({"new_device": True})

    assert render_message(device.rule, device.observed) == "A {new} device"
    assert render_message(device.rule, {}) == "A {new} device"


def test_a_missing_value_with_a_number_format_renders_the_rule_name() -> None:
    far = RULES.rules[0]

    assert render_message(far, {"geo_distance_km": None}) == far.name
