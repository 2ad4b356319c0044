"""The one seam between the engine and a model, and the calibration the models share.

``RiskModel`` is what the engine, the replay and the notebooks call on a model, in the spirit
of river's ``river.anomaly.base.AnomalyDetector``: ``learn_one(x)`` and ``score_one(x)`` over
one login's features as a plain mapping (feature name -> value; a name the model does not
read is ignored, a missing or None one is "unknown"), plus ``risk(score)``, the score mapped
by the model's calibration to a risk share in [0, 1], and ``calibrate(scores)``, which sets
that mapping from the scores of verified-good logins. Every model in ``models`` implements it;
``tests/models/test_protocol.py`` runs the same checks over each.

``CalibratedRisk`` is that mapping, written once: a linear ramp between two scores, the lower
one a high quantile of good logins' scores.

>>> from models.anomaly import AnomalyModel
>>> isinstance(AnomalyModel(), RiskModel)
True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class RiskModel(Protocol):
    """A model the engine can score logins with.

    ``score_one`` learns nothing and is finite for any input, ``{}`` included (a batch-trained
    model's once it is fitted); higher is riskier. ``learn_one`` is only ever shown logins the
    policy allowed or a challenge verified (a detector must not learn from what it flags); a
    batch-trained model may ignore it. ``ready`` says whether its scores mean something yet
    (``risk`` is 0 until then), ``n_learned_`` how many logins it learned.
    """

    @property
    def n_learned_(self) -> int: ...

    @property
    def ready(self) -> bool: ...

    def learn_one(self, x: Mapping[str, Any]) -> None: ...

    def score_one(self, x: Mapping[str, Any]) -> float: ...

    def risk(self, score: float) -> float: ...

    def calibrate(self, scores: Iterable[float], *, quantile: float = 0.98) -> None: ...


class CalibratedRisk(ABC):
    """``risk`` and ``calibrate`` of ``RiskModel``: a ramp from 0 to 1 between two scores.

    Learned state: ``calibration_`` = (low, high) scores between which ``risk`` ramps from 0
    to 1, set by ``calibrate`` from the scores of verified-good logins the model did not learn
    from, so that about ``1 - quantile`` of them carry any model risk. A model whose scores
    are not in [0, 1] says how to bring them there in ``_risk_scale`` (monotone); the ramp and
    its calibration work on that scale.
    """

    calibration_: tuple[float, float]

    @property
    @abstractmethod
    def ready(self) -> bool:
        """Whether the scores mean something yet; ``risk`` is 0 until they do."""

    def _risk_scale(self, score: float) -> float:
        return score

    def risk(self, score: float) -> float:
        """The score mapped through the calibration to a risk share in [0, 1]."""
        low, high = self.calibration_
        if not self.ready or high <= low:
            return 0.0
        return min(1.0, max(0.0, (self._risk_scale(score) - low) / (high - low)))

    def calibrate(self, scores: Iterable[float], *, quantile: float = 0.98) -> None:
        """Set ``calibration_`` from the scores of good logins the model did not learn from."""
        ordered = sorted(self._risk_scale(float(s)) for s in scores)
        if not ordered:
            raise ValueError("calibration needs scores of good logins")
        low = ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]
        self.calibration_ = (low, max(low + 0.05, 1.0))
