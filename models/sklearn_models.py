"""scikit-learn estimators behind the engine's model seam, so the service can run them.

The engine talks to its model through ``models.base.RiskModel`` (``score_one(x)``,
``learn_one(x)``, ``risk(score)``, ``calibrate(scores)``, ``ready`` and ``n_learned_``).
These adapters put a batch-trained scikit-learn estimator behind that interface. Their input
is the anomaly model's own: ``models.anomaly.vectorize`` (each model feature clipped to its
fixed catalog range and scaled to [0, 1]), so a notebook trains on exactly what the service
will score.

They are trained offline (``02-train.ipynb``) and never online: ``learn_one`` does nothing,
and a newer model is trained and promoted instead (``riskengine models promote``). Scoring
one login costs about 0.5 ms (gradient boosting) to 3 ms (100 isolation trees), against some
0.03 ms for the river model.

>>> rows = [{"geo_velocity_kmh": 10.0 * (v % 7), "hour_rarity": (v % 10) / 20,
...          "device_known": v % 9 != 0} for v in range(300)]
>>> m = IsolationForestModel(n_estimators=20, seed=1).fit(rows)
>>> m.ready, m.n_learned_
(True, 300)
>>> far = {"geo_velocity_kmh": 1900.0, "hour_rarity": 1.0, "device_known": False}
>>> m.score_one(far) > m.score_one(rows[1])
True
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, IsolationForest
from threadpoolctl import ThreadpoolController

from features.catalog import MODEL_FEATURES
from models.anomaly import vectorize
from models.base import CalibratedRisk

#: What an artifact holding one of these adapters needs at load time (``persistence.save``).
DEPENDS_ON = ("scikit-learn", "numpy")


_threads: ThreadpoolController | None = None


def _one_thread() -> Any:
    """A context running OpenMP on one thread: for one row, starting a team of threads costs
    ten times the prediction itself (gradient boosting: about 5 ms instead of 0.5)."""
    global _threads
    if _threads is None:  # found once per process; never pickled with a model
        _threads = ThreadpoolController()
    return _threads.limit(limits=1, user_api="openmp")


def to_matrix(rows: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """One row per login: ``vectorize(values)`` in the order of ``MODEL_FEATURES``."""
    names = [f.name for f in MODEL_FEATURES]
    data = [[v[n] for n in names] for v in map(vectorize, rows)]
    return np.asarray(data, dtype=np.float64).reshape(len(data), len(names))


class SklearnModel(CalibratedRisk):
    """A batch-trained scikit-learn estimator behind ``models.base.RiskModel``.

    Subclasses say how to fit (``_fit``) and how to turn a matrix into scores in [0, 1],
    high meaning risky (``_scores``).

    Learned state: ``n_learned_`` (the logins it was fitted on) and ``calibration_`` =
    (low, high) scores between which ``risk`` ramps from 0 to 1 (``models.base``), set by
    ``calibrate`` from the scores of good logins the model was not fitted on.
    """

    n_learned_: int

    def __init__(self) -> None:
        self.n_learned_ = 0
        self.calibration_ = (0.5, 1.0)

    # -- training (notebooks) -----------------------------------------------------------

    def fit(self, rows: Sequence[Mapping[str, Any]], y: Sequence[int] | None = None) -> Any:
        """Fit on ``rows`` (feature dicts, as the engine extracts them); returns self."""
        x = to_matrix(rows)
        if not len(x):
            raise ValueError("cannot fit on no logins")
        self._fit(x, None if y is None else np.asarray(y, dtype=np.int64))
        self.n_learned_ = len(x)
        return self

    def score_many(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Scores of many logins at once (what ``score_one`` gives each)."""
        self._check_fitted()
        return self._scores(to_matrix(rows))

    # -- models.base.RiskModel ------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """A fitted model is ready: it learned everything it will learn before it shipped."""
        return self.n_learned_ > 0

    def score_one(self, x: Mapping[str, Any]) -> float:
        """Score in [0, 1] (high is risky); learns nothing."""
        self._check_fitted()
        matrix = to_matrix([x])
        with _one_thread():
            return float(self._scores(matrix)[0])

    def learn_one(self, x: Mapping[str, Any]) -> None:
        """Nothing: the model is batch-trained (retrain it in ``02-train`` and promote it)."""

    # -- for subclasses -------------------------------------------------------------------

    @abstractmethod
    def _fit(self, x: np.ndarray, y: np.ndarray | None) -> None:
        """Fit the estimator on the matrix ``x`` (and labels ``y``, where it needs them)."""

    @abstractmethod
    def _scores(self, x: np.ndarray) -> np.ndarray:
        """Scores in [0, 1] of the matrix's rows, high meaning risky."""

    def _check_fitted(self) -> None:
        if not self.ready:
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit first")


class IsolationForestModel(SklearnModel):
    """Isolation Forest (Liu, Ting, Zhou 2008) over the model features.

    Works when attacks are few and differ from the logins it was fitted on in a handful of
    features at once (a new network far away at an odd hour); fails when the fitting data
    already hold many attacks of one kind (they form a dense region and stop looking
    isolated: fit it on verified-good logins) and against attackers who look average.

    Parameters
    ----------
    n_estimators, max_samples
        Passed to ``sklearn.ensemble.IsolationForest``.
    seed
        Its ``random_state``.

    The score is the paper's anomaly score ``2 ** (-E[h(x)] / c(n))`` in (0, 1], i.e.
    ``-IsolationForest.score_samples``: about 0.5 and below for ordinary logins, near 1 for
    isolated ones. Learned state: ``forest_``.
    """

    def __init__(
        self, n_estimators: int = 100, max_samples: int | str = "auto", seed: int = 42
    ) -> None:
        super().__init__()
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.seed = seed

    def _fit(self, x: np.ndarray, y: np.ndarray | None) -> None:
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples,
            random_state=self.seed,
        ).fit(x)

    def _scores(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(-self.forest_.score_samples(x), dtype=np.float64)


class ClassifierModel(SklearnModel):
    """A supervised classifier of attacks, for logs that carry labels.

    Works on the attacks it was shown (their kinds, their networks, their tools) and on
    close variations of them; fails on new kinds of attack, and quietly degrades when
    labels are wrong or missing (unreported fraud counted as good). Use it beside the rules
    and an unsupervised model, never alone.

    Parameters
    ----------
    estimator
        An unfitted scikit-learn classifier with ``predict_proba`` (default: a
        ``HistGradientBoostingClassifier``); it is cloned, never fitted in place.
    seed
        ``random_state`` of the default estimator.

    The score is the predicted probability of an attack. Learned state: ``classifier_``.
    """

    def __init__(self, estimator: Any = None, seed: int = 42) -> None:
        super().__init__()
        self.estimator = estimator
        self.seed = seed

    def _fit(self, x: np.ndarray, y: np.ndarray | None) -> None:
        if y is None or len(np.unique(y)) < 2:
            raise ValueError("a classifier needs labels of both classes (attacks and not)")
        base = self.estimator if self.estimator is not None else HistGradientBoostingClassifier(
            random_state=self.seed)
        self.classifier_ = clone(base).fit(x, y)

    def _scores(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.classifier_.predict_proba(x)[:, 1], dtype=np.float64)
