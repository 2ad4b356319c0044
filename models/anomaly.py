"""Online anomaly model over the numeric login features: river's Half-Space Trees.

Works when attacks look unlike the bulk of verified-good logins (new networks, odd hours,
high velocity, failure bursts); fails when an attacker manages to look average, which is
why it only adds to the rules and never decides alone. Features are scaled by the fixed
ranges of ``features.catalog`` (clipped), never by a scaler fitted to live traffic, so
extreme attacker values cannot stretch the space and make normal logins look alike.

>>> from features.extract import FeatureVector
>>> m = AnomalyModel(seed=1, window_size=8)
>>> x = FeatureVector({"device_known": True, "geo_velocity_kmh": 0.0})
>>> for _ in range(16):
...     m.learn_one(x)
>>> 0.0 <= m.score_one(x) <= 1.0
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from river import anomaly

from features.catalog import MODEL_FEATURES
from features.extract import FeatureVector
from models.base import CalibratedRisk


def vectorize(values: Mapping[str, Any]) -> dict[str, float]:
    """Model input: each model feature clipped to its fixed range and scaled to [0, 1].

    A feature that is unknown for this event (None) takes the low end of its range, i.e.
    "no evidence": for a user without history, novelty cannot be measured, and the
    cold-start policy leaves such users to the population-level rules.
    """
    # A feature vector's own dict: its ``get`` is a C call, the wrapper's a Python one.
    get = (values.mapping if isinstance(values, FeatureVector) else values).get
    out: dict[str, float] = {}
    for name, lo, hi, span in _SCALING:
        v = get(name)
        if v is None:
            out[name] = 0.0  # (lo - lo) / span
        else:
            x = float(v)
            out[name] = ((hi if x > hi else lo if x < lo else x) - lo) / span
    return out


# (name, low, high, high - low) of every model feature, worked out once: ``vectorize`` runs
# for every score and every lesson.
_SCALING: tuple[tuple[str, float, float, float], ...] = tuple(
    (spec.name, lo, hi, hi - lo)
    for spec in MODEL_FEATURES
    for lo, hi in [spec.model_range or (0.0, 1.0)]
)


class AnomalyModel(CalibratedRisk):
    """Half-Space Trees with fixed feature limits and a calibration of its scores.

    Parameters
    ----------
    n_trees, height, window_size, seed
        Passed to ``river.anomaly.HalfSpaceTrees``.

    Learned state: ``hst_`` (the trees), ``n_learned_``, and ``calibration_`` = (low, high)
    anomaly scores between which ``risk`` ramps from 0 to 1 (``models.base.CalibratedRisk``:
    set by ``calibrate`` from the scores of verified-good logins, so that about 2 % of them
    carry any model risk).
    """

    def __init__(
        self, n_trees: int = 25, height: int = 8, window_size: int = 250, seed: int = 42
    ) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.hst_ = anomaly.HalfSpaceTrees(
            n_trees=n_trees, height=height, window_size=window_size, seed=seed
        )
        self.n_learned_ = 0
        self.calibration_: tuple[float, float] = (0.5, 1.0)
        self._last: tuple[FeatureVector, dict[str, float]] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The remembered input is a login's features: never part of a saved model.
        return {k: v for k, v in self.__dict__.items() if k != "_last"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._last = None

    def _input(self, values: Mapping[str, Any]) -> dict[str, float]:
        """``vectorize(values)``, reused for the same ``FeatureVector`` object: the engine
        scores a login and, once it is verified, learns the very same vector. Remembered by
        identity, so only for feature vectors, which are not changed after extraction."""
        last = self._last
        if last is not None and last[0] is values:
            return last[1]
        x = vectorize(values)
        if type(values) is FeatureVector:
            self._last = (values, x)
        return x

    @property
    def ready(self) -> bool:
        """Scores mean something only after the first reference window has filled."""
        return self.n_learned_ >= 2 * self.window_size

    def score_one(self, x: Mapping[str, Any]) -> float:
        """Anomaly score in [0, 1] (high is unusual); learns nothing."""
        return float(self.hst_.score_one(self._input(x)))

    def learn_one(self, x: Mapping[str, Any]) -> None:
        self.hst_.learn_one(self._input(x))
        self.n_learned_ += 1
