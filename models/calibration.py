"""Calibration on the deployment's own verified-good logins.

A shipped model is calibrated once, on the traffic it was trained on (the project's
simulator): how far its scores spread on a real shop's customers is another matter. Each
verified-good login the deployment teaches the model carries the score the model gave it
before learning it (a held-out score); ``DeploymentCalibration`` keeps the latest of them and
recalibrates the model from them as they arrive, so that the share of good logins carrying
any model risk is the one its calibration promises, on this shop's customers.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from models.base import RiskModel


class DeploymentCalibration:
    """Recalibrates ``model`` from the held-out scores of the last ``window`` verified-good
    logins, every ``every`` of them once ``minimum`` are in.

    Learned state: ``scores_`` (the window), ``n_seen_``, ``n_calibrations_``; ``card()`` says
    what the current calibration rests on, for the model card.
    """

    def __init__(self, *, window: int = 5_000, every: int = 500, minimum: int = 2_000,
                 quantile: float = 0.98) -> None:
        if not 0 < minimum <= window or every < 1 or not 0.5 <= quantile < 1:
            raise ValueError("need 0 < minimum <= window, every >= 1, 0.5 <= quantile < 1")
        self.window, self.every, self.minimum, self.quantile = window, every, minimum, quantile
        self.scores_: deque[float] = deque(maxlen=window)
        self.n_seen_ = 0
        self.n_calibrations_ = 0
        self._since = 0

    def observe(self, model: RiskModel, score: float | None) -> bool:
        """Note one verified-good login's held-out ``score``; True when ``model`` was
        recalibrated now. A missing or non-finite score is ignored."""
        if score is None or not math.isfinite(score):
            return False
        self.scores_.append(float(score))
        self.n_seen_ += 1
        self._since += 1
        if len(self.scores_) < self.minimum or (self.n_calibrations_ and self._since < self.every):
            return False
        model.calibrate(self.scores_, quantile=self.quantile)
        self._since = 0
        self.n_calibrations_ += 1
        return True

    def card(self) -> dict[str, Any]:
        """What the calibration rests on, for the model card."""
        if not self.n_calibrations_:
            return {"source": "training", "deployment_scores_seen": self.n_seen_,
                    "note": f"recalibrated on this deployment once {self.minimum} verified-good "
                            "logins were scored"}
        return {"source": "deployment", "scores": len(self.scores_),
                "deployment_scores_seen": self.n_seen_, "recalibrations": self.n_calibrations_,
                "quantile": self.quantile}
