"""Online anomaly model over the numeric login features: Half-Space Trees.

Works when attacks look unlike the bulk of verified-good logins (new networks, odd hours,
high velocity, failure bursts); fails when an attacker manages to look average, which is
why it only adds to the rules and never decides alone. Features are scaled by the fixed
ranges of ``features.catalog`` (clipped), never by a scaler fitted to live traffic, so
extreme attacker values cannot stretch the space and make normal logins look alike.

The trees are ``models.hst.HalfSpaceForest`` (arrays walked by compiled code, ~2 us a login
to score and learn) by default, or river's ``river.anomaly.HalfSpaceTrees`` (``backend=
"river"``, ~100 us), the reference it is tested against: the two give the same scores, float
for float, and a model converts from one to the other with ``with_backend``. Models saved
with river's trees load with the compiled ones.

>>> from features.extract import FeatureVector
>>> m = AnomalyModel(seed=1, window_size=8)
>>> x = FeatureVector({"device_known": True, "geo_velocity_kmh": 0.0})
>>> for _ in range(16):
...     m.learn_one(x)
>>> 0.0 <= m.score_one(x) <= 1.0
True
>>> m.with_backend("river").score_one(x) == m.score_one(x)
True
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from enum import StrEnum
from operator import itemgetter
from typing import Any

import numpy as np
from river import anomaly

from features.catalog import MODEL_FEATURES
from features.extract import FeatureVector
from models.base import CalibratedRisk
from models.hst import FloatArray, HalfSpaceForest, scale


class Backend(StrEnum):
    """What walks the trees."""

    COMPILED = "compiled"  # models.hst.HalfSpaceForest: flat arrays, one numba call
    RIVER = "river"  # river.anomaly.HalfSpaceTrees: Python objects, the reference


def vectorize(values: Mapping[str, Any]) -> dict[str, float]:
    """Model input: each model feature clipped to its fixed range and scaled to [0, 1].

    A feature that is unknown for this event (None, or NaN) takes the low end of its range,
    i.e. "no evidence": for a user without history, novelty cannot be measured, and the
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
            out[name] = 0.0 if x != x else ((hi if x > hi else lo if x < lo else x) - lo) / span
    return out


# (name, low, high, high - low) of every model feature, worked out once: ``vectorize`` runs
# for every score and every lesson.
_SCALING: tuple[tuple[str, float, float, float], ...] = tuple(
    (spec.name, lo, hi, hi - lo)
    for spec in MODEL_FEATURES
    for lo, hi in [spec.model_range or (0.0, 1.0)]
)

# The compiled forest's vectors: the model features in sorted order, the order river's trees
# are grown in (over ``sorted(x)`` of the first point), with their ranges as arrays.
_ORDER = tuple(sorted(_SCALING))
FEATURE_ORDER: tuple[str, ...] = tuple(name for name, *_ in _ORDER)
# ``models.hst.scale``'s rows (low, high, span), applied inside the forest's compiled calls.
SCALING: FloatArray = np.array([[row[i] for row in _ORDER] for i in (1, 2, 3)],
                               dtype=np.float64)
_GATHER = itemgetter(*FEATURE_ORDER)


def raw_array(values: Mapping[str, Any]) -> FloatArray:
    """The model features of ``values`` as they are, a float64 vector over
    ``FEATURE_ORDER`` (NaN where unknown): what the compiled forest scales and walks."""
    mapping = values.mapping if isinstance(values, FeatureVector) else values
    try:
        raw: Any = _GATHER(mapping)  # every feature there: one C call
    except KeyError:
        get = mapping.get
        raw = [get(name) for name in FEATURE_ORDER]
    # None as NaN before numpy, which would make the same NaN of it by a slower way (~0.5
    # of ~3 us); every other value numpy converts as it always did.
    return np.array([_NAN if v is None else v for v in raw], dtype=np.float64)


_NAN = float("nan")


def vectorize_array(values: Mapping[str, Any]) -> FloatArray:
    """``vectorize(values)`` as a float64 vector over ``FEATURE_ORDER``."""
    return scale(raw_array(values), SCALING)


class AnomalyModel(CalibratedRisk):
    """Half-Space Trees with fixed feature limits and a calibration of its scores.

    Parameters
    ----------
    n_trees, height, window_size, seed
        Passed to the trees (``river.anomaly.HalfSpaceTrees`` takes the same).
    backend
        ``"compiled"`` (``models.hst.HalfSpaceForest``) or ``"river"``: same scores.

    Learned state: ``hst_`` (the trees), ``n_learned_``, and ``calibration_`` = (low, high)
    anomaly scores between which ``risk`` ramps from 0 to 1 (``models.base.CalibratedRisk``:
    set by ``calibrate`` from the scores of verified-good logins, so that about 2 % of them
    carry any model risk).
    """

    def __init__(
        self, n_trees: int = 25, height: int = 8, window_size: int = 250, seed: int = 42,
        *, backend: Backend | str = Backend.COMPILED,
    ) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed
        self.backend = Backend(backend)
        self.hst_: HalfSpaceForest | anomaly.HalfSpaceTrees
        if self.backend is Backend.COMPILED:
            forest = HalfSpaceForest(n_trees=n_trees, height=height, window_size=window_size,
                                     seed=seed)
            # river grows its trees at the first lesson over sorted(vectorize(x)): the same
            # features, the same trees
            forest.grow(FEATURE_ORDER)
            self.hst_ = forest
        else:
            self.hst_ = anomaly.HalfSpaceTrees(n_trees=n_trees, height=height,
                                               window_size=window_size, seed=seed)
        self.n_learned_ = 0
        self.calibration_: tuple[float, float] = (0.5, 1.0)
        self._last: tuple[FeatureVector, Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # The remembered input is a login's features: never part of a saved model.
        return {k: v for k, v in self.__dict__.items() if k != "_last"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._last = None
        if "backend" not in state:
            # Saved before the compiled forest existed: river's trees, converted (exactly).
            self.backend = Backend.COMPILED
            self.hst_ = _compiled(self.hst_)

    def with_backend(self, backend: Backend | str) -> AnomalyModel:
        """A copy of this model whose trees are walked by ``backend``: same trees, masses,
        window position and calibration, so the same scores from here on."""
        backend = Backend(backend)
        copy = AnomalyModel.__new__(AnomalyModel)
        copy.__dict__.update(self.__getstate__())
        copy._last = None
        copy.backend = backend
        if backend is Backend.COMPILED:
            copy.hst_ = _compiled(self.hst_)
        elif isinstance(self.hst_, HalfSpaceForest):
            copy.hst_ = self.hst_.to_river()
        else:
            copy.hst_ = deepcopy(self.hst_)
        return copy

    @staticmethod
    def warm() -> None:
        """Compile the compiled backend's kernels, or load them from numba's disk cache (see
        ``models.hst``): the service calls it at start-up so that no request pays for it."""
        HalfSpaceForest.warm()

    def _input(self, values: Mapping[str, Any]) -> Any:
        """The trees' input for ``values`` (the raw vector for the compiled trees, which
        scale it themselves; ``vectorize``'s dict for river's), reused for the same
        ``FeatureVector`` object: the engine scores a login and, once it is verified, learns
        the very same vector. Remembered by identity, so only for feature vectors, which are
        not changed after extraction."""
        last = self._last
        if last is not None and last[0] is values:
            return last[1]
        x = raw_array(values) if self.backend is Backend.COMPILED else vectorize(values)
        if type(values) is FeatureVector:
            self._last = (values, x)
        return x

    @property
    def ready(self) -> bool:
        """Scores mean something only after the first reference window has filled."""
        return self.n_learned_ >= 2 * self.window_size

    def score_one(self, x: Mapping[str, Any]) -> float:
        """Anomaly score in [0, 1] (high is unusual); learns nothing."""
        hst = self.hst_
        if isinstance(hst, HalfSpaceForest):
            return hst.score_array(self._input(x), SCALING)
        return float(hst.score_one(self._input(x)))

    def learn_one(self, x: Mapping[str, Any]) -> None:
        hst = self.hst_
        if isinstance(hst, HalfSpaceForest):
            hst.learn_array(self._input(x), SCALING)
        else:
            hst.learn_one(self._input(x))
        self.n_learned_ += 1


def _compiled(hst: HalfSpaceForest | anomaly.HalfSpaceTrees) -> HalfSpaceForest:
    """``hst`` as a compiled forest over ``FEATURE_ORDER`` (a copy)."""
    forest = (HalfSpaceForest.from_river(hst, FEATURE_ORDER)
              if isinstance(hst, anomaly.HalfSpaceTrees) else hst.copy())
    if not forest.grown:
        forest.grow(FEATURE_ORDER)
    return forest
