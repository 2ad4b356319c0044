"""A fitted gradient-boosted classifier as flat arrays, scored by one compiled call.

``BoostedTrees`` holds a scikit-learn ``HistGradientBoostingClassifier`` (binary, log loss)
as one float64 array ``nodes_`` of shape ``(n_trees, 2 ** (depth + 1) - 1, 4)``: each tree a
complete binary tree of ``depth_`` levels of splits in heap order (node ``i`` has children
``2i + 1`` and ``2i + 2``, the leaves are the last ``2 ** depth`` nodes), and for each node
its split feature (an index into ``features``), its threshold, whether a missing value goes
right (1.0 or 0.0) and its value, side by side. A leaf of scikit-learn's above the last
level is pushed down it through pass-through splits (threshold +inf, missing left: every
login goes left) that carry the leaf's value. So every walk is ``depth_`` steps of the same
arithmetic, with no branch on the data, and the walks of different trees overlap in the
processor (``_raw``). One numba function walks every tree for one login; ``proba_reference``
walks the same array in plain Python with the same arithmetic, and the tests hold the two
equal, and both equal to ``predict_proba``.

The walk is scikit-learn's: a login goes right when ``x > threshold`` (left when
``x <= threshold``), or, when ``x`` is NaN, when the node sends missing values right. The
log-odds are ``intercept_`` (scikit-learn's ``_baseline_prediction``) plus the leaves
reached, added in scikit-learn's order; the leaves' values already include the learning
rate. The probability is the logistic of the log-odds. Trees deeper than ``MAX_DEPTH`` are
refused (the complete layout doubles in size with every level).

Values of internal nodes (for ``explain``): scikit-learn stores them without the learning
rate, and the root's as 0, so they are not used. Each internal node's value is instead the
mean of its children's values weighted by their training counts (``count``, unweighted by
``sample_weight``), worked out from the leaves up: the mean leaf a training login reached
below that node. ``explain`` gives Saabas contributions: for every split on a login's path,
``value(child) - value(node)`` goes to the split's feature (a pass-through adds 0.0 to
feature 0: the same number); so the contributions add up to
``raw - baseline_``, where ``baseline_`` is ``intercept_`` plus every tree's root value (the
log-odds of the average training login, as the trees see it).

Features are read by name (``Feature``): a bool is 1.0 or 0.0, a number its float, a feature
with ``categories`` the index of its value in them; None, a missing name, an unknown
category or NaN is missing (NaN), and goes where training sent missing values.

Works when the features at scoring time are computed as they were for training (the same
extractor). Fails silently when they are not: a category renamed is simply missing. Only
binary classifiers without scikit-learn categorical splits are converted (categories here
are ordinal codes, so their monotonic sign must be 0).

The compiled functions are cached to disk (numba ``cache=True``), as in ``models.hst``:
``warm()`` compiles them or loads them from that cache, so that a service does it at start-up
and never inside a request.

>>> features = [Feature("failed_logins_10m", sign=1), Feature("device_known", sign=-1)]
>>> rows = [{"failed_logins_10m": i % 7, "device_known": i % 3 != 0} for i in range(400)]
>>> labels = [int(r["failed_logins_10m"] > 4 and not r["device_known"]) for r in rows]
>>> model = fit(rows, labels, features, max_iter=20, min_samples_leaf=10)
>>> risky = {"failed_logins_10m": 6, "device_known": False}
>>> model.proba(risky) > 0.5 > model.proba({"failed_logins_10m": 0, "device_known": True})
True
>>> abs(model.proba(risky) - model.proba_reference(risky)) < 1e-12
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from numba import njit

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingClassifier

FloatArray = npt.NDArray[np.float64]

# The columns of ``nodes_``.
FEATURE, THRESHOLD, MISSING_RIGHT, VALUE = 0, 1, 2, 3
N_COLUMNS = 4
# The deepest tree converted: 2 ** 11 - 1 nodes a tree.
MAX_DEPTH = 10

_NAN = math.nan


@dataclass(frozen=True, slots=True)
class Feature:
    """A feature the model reads: its name, its monotonic constraint and its categories.

    ``sign``: +1 when a larger value may only raise the risk, -1 only lower it, 0 free.
    ``categories``: the values of a feature whose values are strings; a value is encoded as
    its index in them (ordinal codes, so ``sign`` must be 0), anything else as missing.
    ``missing``: the value a None stands for (None: NaN, learned as its own case). A model
    trained on one generator's traffic learns *which* logins carry a feature at all (there,
    bots sent no device); saying that an absent count is 0 and an absent fact is False keeps
    it to what the values say.
    """

    name: str
    sign: int = 0
    categories: tuple[str, ...] | None = None
    missing: float | None = None

    def __post_init__(self) -> None:
        if self.sign not in (-1, 0, 1):
            raise ValueError(f"feature {self.name!r}: sign must be -1, 0 or 1, not {self.sign!r}")
        if self.categories is not None:
            if self.sign != 0:
                raise ValueError(f"feature {self.name!r}: categories are ordinal codes, "
                                 "so their sign must be 0")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"feature {self.name!r}: categories repeat")


@njit(cache=True, inline="always")
def _child(tree: FloatArray, node: int, x: FloatArray) -> int:
    """The child of ``node`` that ``x`` goes to: right when ``x > threshold``, or, when ``x``
    is NaN, when the node sends missing values right (no branch: both are 0 or 1)."""
    v = x[int(tree[node, FEATURE])]
    right = (v > tree[node, THRESHOLD]) | (math.isnan(v) & (tree[node, MISSING_RIGHT] != 0.0))
    return 2 * node + 1 + int(right)


@njit(cache=True)
def _sigmoid(raw: float) -> float:
    """The logistic function, without overflow for large ``|raw|``."""
    if raw >= 0.0:
        return 1.0 / (1.0 + math.exp(-raw))
    e = math.exp(raw)
    return e / (1.0 + e)


@njit(cache=True)
def _raw(nodes: FloatArray, depth: int, intercept: float, x: FloatArray) -> float:
    """``intercept`` plus the value of the leaf ``x`` reaches in every tree, in tree order.

    The trees are walked a level at a time, all trees at each level: the steps of one level
    do not wait on each other, so the processor runs them side by side (about twice as fast
    as one tree after the other); the sum is still made tree by tree."""
    n_trees = nodes.shape[0]
    at = np.zeros(n_trees, dtype=np.int64)
    for _ in range(depth):
        for t in range(n_trees):
            at[t] = _child(nodes[t], at[t], x)
    total = intercept
    for t in range(n_trees):
        total += nodes[t, at[t], VALUE]
    return total


@njit(cache=True)
def _proba(nodes: FloatArray, depth: int, intercept: float, x: FloatArray) -> float:
    """The logistic of ``_raw``: one call from Python for the whole model."""
    return _sigmoid(_raw(nodes, depth, intercept, x))


@njit(cache=True)
def _explain(nodes: FloatArray, depth: int, intercept: float, x: FloatArray,
             out: FloatArray) -> float:
    """``_raw``, and each feature's Saabas contribution written into ``out`` (zeroed first):
    ``value(child) - value(node)`` of every split on ``x``'s path, to the split's feature."""
    out[:] = 0.0
    total = intercept
    for t in range(nodes.shape[0]):
        tree = nodes[t]
        node = 0
        for _ in range(depth):
            child = _child(tree, node, x)
            out[int(tree[node, FEATURE])] += tree[child, VALUE] - tree[node, VALUE]
            node = child
        total += tree[node, VALUE]
    return total


def _sigmoid_reference(raw: float) -> float:
    """``_sigmoid`` in Python."""
    if raw >= 0.0:
        return 1.0 / (1.0 + math.exp(-raw))
    e = math.exp(raw)
    return e / (1.0 + e)


class BoostedTrees:
    """A fitted gradient-boosted classifier as flat arrays (picklable, no sklearn needed to
    score).

    Parameters
    ----------
    features
        What the model reads, in the order of its vectors.
    nodes
        ``(n_trees, 2 ** (depth + 1) - 1, 4)`` float64: per tree, in heap order, each node's
        split feature, threshold, whether missing goes right, value (see the module).
    intercept
        The log-odds before any tree (scikit-learn's baseline prediction).

    Build one with ``from_sklearn`` or ``fit``. ``proba`` is the compiled walk and
    ``proba_reference`` the plain one; ``explain`` says what each feature added.
    """

    def __init__(self, features: Sequence[Feature], nodes: FloatArray,
                 intercept: float) -> None:
        self.features: tuple[Feature, ...] = tuple(features)
        self.nodes_: FloatArray = np.ascontiguousarray(nodes, dtype=np.float64)
        self.intercept_ = float(intercept)
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError("feature names repeat")
        shape = self.nodes_.shape
        depth = (shape[1] + 1).bit_length() - 2 if len(shape) == 3 else -1
        if len(shape) != 3 or shape[2] != N_COLUMNS or shape[1] != 2 ** (depth + 1) - 1:
            raise ValueError(f"nodes must have shape (n_trees, 2 ** (depth + 1) - 1, "
                             f"{N_COLUMNS}), not {shape}")
        self.depth_ = depth
        split = self.nodes_[:, : 2 ** depth - 1, FEATURE]
        if split.size and not (split.min() >= 0 and split.max() < len(self.features)):
            raise ValueError("a node splits on a feature the model does not list")
        # the log-odds that contributions start from: see the module's docstring
        self.baseline_ = self.intercept_ + float(sum(self.nodes_[:, 0, VALUE].tolist()))
        plan = _plan(self.features)
        self._names = tuple(name for name, _, _ in plan)
        self._absent = tuple(absent for _, _, absent in plan)
        self._categorical = tuple((i, codes) for i, (_, codes, _) in enumerate(plan)
                                  if codes is not None)

    def __getstate__(self) -> dict[str, Any]:
        return {"features": self.features, "nodes": self.nodes_, "intercept": self.intercept_}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["features"], state["nodes"], state["intercept"])  # type: ignore[misc]

    def __repr__(self) -> str:
        return (f"BoostedTrees({len(self.features)} features, {len(self.nodes_)} trees, "
                f"depth {self.depth_})")

    # -- reading a login ---------------------------------------------------------------------

    def encode(self, values: Mapping[str, Any]) -> FloatArray:
        """The float64 vector of ``values`` in ``features``' order (NaN: missing).

        A bool is 1.0 or 0.0, a number its float; a feature with categories is the index of
        its value in them. None or a missing name is the feature's ``missing`` (NaN when
        unset); an unknown category is NaN. A string for a
        feature without categories is a ``TypeError``: the extractor and the model disagree.
        """
        # A read-only view that offers its plain dict (``features.extract.FeatureVector``) is
        # read through it: a Mapping's ``get`` is Python code, a dict's one C call. The values
        # are gathered by C loops (map, zip) and converted once: ~3 us for 54 features.
        raw = list(map(getattr(values, "mapping", values).get, self._names))
        out: list[Any] = [a if v is None else v for v, a in zip(raw, self._absent, strict=True)]
        for i, codes in self._categorical:
            v = raw[i]
            if v is not None:
                out[i] = codes.get(v, _NAN) if isinstance(v, str) else _NAN
        try:
            return np.array(out, dtype=np.float64)
        except ValueError:  # a string where a number belongs: name it
            for v, name in zip(out, self._names, strict=True):
                if isinstance(v, str):
                    raise TypeError(f"feature {name!r} is numeric; got the string {v!r}") \
                        from None
            raise

    # -- scoring -----------------------------------------------------------------------------

    def raw(self, values: Mapping[str, Any]) -> float:
        """The log-odds: ``intercept_`` plus the leaf reached in every tree (compiled)."""
        return float(_raw(self.nodes_, self.depth_, self.intercept_, self.encode(values)))

    def proba(self, values: Mapping[str, Any]) -> float:
        """The probability of the positive class (the logistic of ``raw``); compiled."""
        return float(_proba(self.nodes_, self.depth_, self.intercept_, self.encode(values)))

    def proba_reference(self, values: Mapping[str, Any]) -> float:
        """``proba`` walked in plain Python over the same array, with the same arithmetic:
        the reference the compiled walk is tested against."""
        return _sigmoid_reference(self._walk_reference(values)[0])

    def explain(self, values: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
        """``proba`` and each feature's contribution to the log-odds (compiled).

        Saabas: for every split on the login's path in every tree, ``value(child) -
        value(node)`` goes to the split's feature. ``baseline_`` is not included: the
        contributions plus ``baseline_`` are ``raw`` (to rounding).
        """
        return self._explained(self.encode(values))

    def _explained(self, x: FloatArray) -> tuple[float, dict[str, float]]:
        """``explain`` of an encoded login."""
        out = np.empty(len(self.features), dtype=np.float64)
        raw = _explain(self.nodes_, self.depth_, self.intercept_, x, out)
        return (float(_sigmoid(raw)),
                dict(zip(self._names, out.tolist(), strict=True)))

    def proba_explained_from(self, values: Mapping[str, Any], at_least: float
                             ) -> tuple[float, dict[str, float]]:
        """``proba``, and ``explain``'s contributions when it is ``at_least`` or more (else
        none): what a caller that explains only the probable logins asks, with ``values``
        read once for both walks."""
        x = self.encode(values)
        p = float(_proba(self.nodes_, self.depth_, self.intercept_, x))
        if p < at_least:
            return p, {}
        return self._explained(x)

    def explain_reference(self, values: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
        """``explain`` walked in plain Python: the reference for the compiled one."""
        raw, contributions = self._walk_reference(values)
        return _sigmoid_reference(raw), contributions

    @cached_property
    def _trees(self) -> list[list[list[float]]]:
        """``nodes_`` as Python lists, for the reference walk (never pickled)."""
        trees: list[list[list[float]]] = self.nodes_.tolist()
        return trees

    def _walk_reference(self, values: Mapping[str, Any]) -> tuple[float, dict[str, float]]:
        """The log-odds and the contributions, in plain Python."""
        x = self.encode(values).tolist()
        names = [f.name for f in self.features]
        contributions = dict.fromkeys(names, 0.0)
        total = self.intercept_
        for tree in self._trees:
            node = 0
            for _ in range(self.depth_):
                feature, threshold, missing_right, value = tree[node]
                v = x[int(feature)]
                right = v > threshold or (math.isnan(v) and missing_right != 0.0)
                child = 2 * node + 1 + int(right)
                contributions[names[int(feature)]] += tree[child][VALUE] - value
                node = child
            total += tree[node][VALUE]
        return total, contributions

    @staticmethod
    def warm() -> None:
        """Compile the kernels now (or load them from numba's disk cache): call at start-up,
        so that no request pays for it. Cheap once done; idempotent."""
        nodes = np.zeros((1, 1, N_COLUMNS), dtype=np.float64)
        x = np.zeros(1, dtype=np.float64)
        _raw(nodes, 0, 0.0, x)
        _proba(nodes, 0, 0.0, x)
        _explain(nodes, 0, 0.0, x, np.zeros(1, dtype=np.float64))

    # -- conversion --------------------------------------------------------------------------

    @classmethod
    def from_sklearn(cls, model: HistGradientBoostingClassifier,
                     features: Sequence[Feature]) -> BoostedTrees:
        """The same model as ``model`` (a fitted binary ``HistGradientBoostingClassifier``
        whose columns are ``features``, in order), as arrays; ``proba`` is the probability
        of ``model.classes_[1]``.

        Refused (``ValueError``): more than two classes, another number of columns, column
        names or monotonic constraints that differ from ``features``, categorical splits,
        a tree deeper than ``MAX_DEPTH``.
        """
        features = tuple(features)
        if not hasattr(model, "_predictors"):
            raise ValueError("the model is not fitted")
        if len(model.classes_) != 2 or model.n_trees_per_iteration_ != 1:
            raise ValueError("only a binary classifier can be converted")
        if model.n_features_in_ != len(features):
            raise ValueError(f"the model reads {model.n_features_in_} columns, "
                             f"features lists {len(features)}")
        names = [f.name for f in features]
        seen = getattr(model, "feature_names_in_", None)
        if seen is not None and list(seen) != names:
            raise ValueError("the model's column names differ from the features' names")
        if _monotonic(model, names) != [f.sign for f in features]:
            raise ValueError("the model's monotonic constraints differ from the features' signs")
        records = [predictor.nodes for (predictor,) in model._predictors]
        depth = max((int(r["depth"].max()) for r in records), default=0)
        if depth > MAX_DEPTH:
            raise ValueError(f"a tree is {depth} levels deep; at most {MAX_DEPTH} are "
                             "converted (fit with a smaller max_depth)")
        nodes = np.zeros((len(records), 2 ** (depth + 1) - 1, N_COLUMNS), dtype=np.float64)
        for t, r in enumerate(records):
            _fill(nodes[t], r, depth)
        intercept = float(np.asarray(model._baseline_prediction).ravel()[0])
        return cls(features, nodes, intercept)


def _plan(features: Sequence[Feature]
          ) -> tuple[tuple[str, dict[str, float] | None, float], ...]:
    """Per feature its name, for a categorical one its value -> code table, and what a
    None is encoded as."""
    return tuple((f.name, None if f.categories is None
                  else {c: float(i) for i, c in enumerate(f.categories)},
                  _NAN if f.missing is None else float(f.missing)) for f in features)


def _monotonic(model: HistGradientBoostingClassifier, names: list[str]) -> list[int]:
    """The model's monotonic constraint per column (0 where none)."""
    cst = model.monotonic_cst
    if cst is None:
        return [0] * len(names)
    if isinstance(cst, Mapping):
        return [int(cst.get(n, 0)) for n in names]
    return [int(c) for c in cst]


def _values(records: np.ndarray) -> list[float]:
    """Each node's value: a leaf's own, an internal node's the count-weighted mean of its
    children's (scikit-learn's own internal values lack the learning rate)."""
    value = records["value"].astype(np.float64).tolist()
    count = records["count"].astype(np.float64).tolist()
    # children come after their parent (depth-first order): going backwards, every child is
    # done before its parent
    for i in range(len(records) - 1, -1, -1):
        if records["is_leaf"][i]:
            continue
        lo, hi = int(records["left"][i]), int(records["right"][i])
        if not (i < lo and i < hi):
            raise ValueError("a tree's children do not follow their parent")
        weight = count[lo] + count[hi]
        value[i] = ((count[lo] * value[lo] + count[hi] * value[hi]) / weight if weight > 0
                    else (value[lo] + value[hi]) / 2)
        count[i] = weight
    return value


def _fill(tree: FloatArray, records: np.ndarray, depth: int) -> None:
    """One scikit-learn predictor's nodes into ``tree`` (heap order, ``depth`` levels of
    splits), a leaf above the last level pushed down by pass-through splits."""
    if np.any(records["is_categorical"]):
        raise ValueError("categorical splits are not supported: encode categories as codes")
    value = _values(records)
    stack = [(0, 0, 0)]  # (scikit-learn's node, heap slot, level)
    while stack:
        i, slot, level = stack.pop()
        tree[slot, VALUE] = value[i]
        if level == depth:
            continue
        if records["is_leaf"][i]:
            # every login goes left (x > inf is false, NaN goes left), to the same value
            tree[slot, FEATURE] = 0.0
            tree[slot, THRESHOLD] = math.inf
            tree[slot, MISSING_RIGHT] = 0.0
            stack.append((i, 2 * slot + 1, level + 1))
        else:
            tree[slot, FEATURE] = float(records["feature_idx"][i])
            tree[slot, THRESHOLD] = float(records["num_threshold"][i])
            tree[slot, MISSING_RIGHT] = 0.0 if records["missing_go_to_left"][i] else 1.0
            stack.append((int(records["left"][i]), 2 * slot + 1, level + 1))
            stack.append((int(records["right"][i]), 2 * slot + 2, level + 1))


def fit(rows: Sequence[Mapping[str, Any]], labels: Sequence[int], features: Sequence[Feature],
        *, sample_weight: Sequence[float] | None = None, max_iter: int = 150,
        max_depth: int = 5, learning_rate: float = 0.1, min_samples_leaf: int = 40,
        l2_regularization: float = 1.0, random_state: int = 0) -> BoostedTrees:
    """A ``HistGradientBoostingClassifier`` fitted on ``rows`` (encoded as ``encode`` does)
    and ``labels``, converted with ``BoostedTrees.from_sklearn``.

    Each feature's ``sign`` is its monotonic constraint. Categories are given to scikit-learn
    as plain numbers (their codes), not as categorical features. Early stopping is off (scikit-learn
    turns it on by itself above 10,000 rows), so the model has ``max_iter`` trees and every
    row trains.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    features = tuple(features)
    encoder = BoostedTrees(features, np.zeros((0, 1, N_COLUMNS)), 0.0)
    x = np.empty((len(rows), len(features)), dtype=np.float64)
    for i, row in enumerate(rows):
        x[i] = encoder.encode(row)
    y = np.asarray(labels)
    model = HistGradientBoostingClassifier(
        max_iter=max_iter, max_depth=max_depth, learning_rate=learning_rate,
        min_samples_leaf=min_samples_leaf, l2_regularization=l2_regularization,
        monotonic_cst=[f.sign for f in features], categorical_features=None,
        early_stopping=False, random_state=random_state)
    model.fit(x, y, sample_weight=None if sample_weight is None else np.asarray(sample_weight))
    return BoostedTrees.from_sklearn(model, features)
