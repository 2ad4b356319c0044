"""The shipped model's scale fits the shop it serves: recalibrated on the deployment's own
verified-good logins (issue #17, item 7)."""

from __future__ import annotations

import math
import random

import pytest

from models.anomaly import AnomalyModel
from models.calibration import DeploymentCalibration


def test_nothing_changes_before_enough_good_logins() -> None:
    model = AnomalyModel()
    before = model.calibration_
    cal = DeploymentCalibration(minimum=100, window=200, every=50)

    assert not any(cal.observe(model, 0.4) for _ in range(99))
    assert model.calibration_ == before
    assert cal.card()["source"] == "training"


def test_the_ramp_starts_at_the_shops_own_high_quantile() -> None:
    model = AnomalyModel()
    cal = DeploymentCalibration(minimum=500, window=1000, every=100, quantile=0.98)
    rng = random.Random(7)
    # This shop's good logins score higher than the training traffic's: the shipped
    # calibration would give many of them model risk.
    scores = [min(1.0, max(0.0, rng.gauss(0.62, 0.05))) for _ in range(1000)]

    for s in scores:
        cal.observe(model, s)

    low = model.calibration_[0]
    share_with_risk = sum(s > low for s in scores[-1000:]) / 1000
    assert share_with_risk == pytest.approx(0.02, abs=0.01)
    assert cal.card()["source"] == "deployment" and cal.card()["recalibrations"] >= 1


def test_it_follows_the_shop_as_it_drifts_and_ignores_non_scores() -> None:
    model = AnomalyModel()
    cal = DeploymentCalibration(minimum=200, window=200, every=50)
    for _ in range(300):
        cal.observe(model, 0.3)
    first = model.calibration_[0]
    for s in [None, math.nan, math.inf]:
        assert not cal.observe(model, s)
    for _ in range(300):
        cal.observe(model, 0.5)
    assert model.calibration_[0] > first


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        DeploymentCalibration(minimum=10, window=5)
