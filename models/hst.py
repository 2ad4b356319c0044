"""Half-space trees as flat arrays, scored and learned by one compiled call for all trees.

``HalfSpaceForest`` is river's ``river.anomaly.HalfSpaceTrees`` (Tan, Ting and Liu, 2011)
with the same algorithm, stored differently: each tree is a complete binary tree of height
``height`` laid out in heap order (node ``i`` has children ``2i + 1`` and ``2i + 2``), and the
forest is one float64 array ``nodes_`` of shape ``(n_trees, 2 ** (height + 1) - 1, 4)``: for
each node its split feature (an index into ``features_``), its split value, its mass in the
latest window and its mass in the reference window, side by side so that a walk reads one
cache line a node (masses are counts below 2 ** 53, exact as floats). One numba function
walks every tree to score a point, another to learn it; each is a single call from Python,
where river walks 25 trees of Python objects twice per login.

It is the same model, not an approximation: built from the same seed, height, window size
and limits, it grows the same trees (the same calls on a ``random.Random`` seeded alike, in
the same order) and gives the same scores, float for float, as ``river.anomaly.HalfSpaceTrees``
(``tests/models/test_hst.py`` holds them equal over 10,000 events). As in river:

- the trees are grown when the first point is learned, over the features of that point in
  sorted order (``features_``, fixed from then on); a feature seen only later is never split
  on, so it is ignored;
- a feature missing from a point (absent from the dict) sends the walk down the child that
  saw more points in the latest window (left on a tie), in scoring as in learning;
- a value that is NaN goes right at every split, as ``nan < threshold`` is false in Python;
- the score is 0 until the first window has filled, then ``1 - mass / max_mass`` (high is
  unusual).

Works when anomalies are spread out and the features are bounded (by default each in [0, 1];
``limits`` gives other ranges); fails when anomalies come packed together in a window, since
they then make their own mass.

The compiled functions are cached to disk (numba ``cache=True``): next to this file in
``__pycache__`` when that folder is writable, else in numba's per-user cache folder, or in
``NUMBA_CACHE_DIR`` when that environment variable is set. ``warm()`` compiles them, or loads
them from that cache, so that a service does it at start-up and never inside a request.

>>> forest = HalfSpaceForest(n_trees=5, height=3, window_size=3, seed=42)
>>> for x in (0.5, 0.45, 0.43):
...     forest.learn_one({"x": x})
>>> for x in (0.5, 0.45, 0.43, 0.44, 0.445, 0.45, 0.0):
...     forest.learn_one({"x": x})
...     print(f"{x:.3f}: {forest.score_one({'x': x}):.3f}")
0.500: 0.107
0.450: 0.071
0.430: 0.107
0.440: 0.107
0.445: 0.107
0.450: 0.071
0.000: 0.853
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit
from river import anomaly, base
from river.tree.padded import PaddedBranch, PaddedLeaf

FloatArray = npt.NDArray[np.float64]

# The padding of the split points, as in river's ``make_padded_tree(..., padding=0.15)``:
# no split closer than 15 % of the node's range to either of its ends.
PADDING = 0.15

_ABSENT = object()


def _sorted(names: Iterable[Any]) -> list[Any]:
    """``sorted(names)``: feature names are whatever river allows (hashable), sorted as river
    sorts them."""
    out = list(names)
    out.sort()
    return out


# The columns of ``nodes_``.
FEATURE, THRESHOLD, L_MASS, R_MASS = 0, 1, 2, 3
# The rows of a ``scaling`` array.
LOW, HIGH, SPAN = 0, 1, 2
# No scaling: the vector is used as it is.
NO_SCALING: FloatArray = np.zeros((0, 0), dtype=np.float64)


@njit(cache=True)
def scale(x: FloatArray, scaling: FloatArray) -> FloatArray:
    """``x`` clipped to each feature's [low, high] and mapped to ``(v - low) / span`` (rows of
    ``scaling``), NaN (unknown) to 0; ``x`` itself when ``scaling`` is ``NO_SCALING``.

    The same float operations, in the same order, as ``models.anomaly.vectorize``, so the
    same values."""
    if scaling.shape[0] == 0:
        return x
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        v = x[i]
        if math.isnan(v):
            out[i] = 0.0
        else:
            lo = scaling[LOW, i]
            hi = scaling[HIGH, i]
            out[i] = ((hi if v > hi else lo if v < lo else v) - lo) / scaling[SPAN, i]
    return out


@njit(cache=True, inline="always")
def _child(tree: FloatArray, node: int, x: FloatArray) -> int:
    """The child of ``node`` that ``x`` goes down to, as river's trees choose it: by the
    split, or, for a missing (NaN) feature, the child with the larger latest-window mass."""
    value = x[int(tree[node, FEATURE])]
    left = 2 * node + 1
    if math.isnan(value):
        return left + 1 if tree[left, L_MASS] < tree[left + 1, L_MASS] else left
    return left if value < tree[node, THRESHOLD] else left + 1


@njit(cache=True)
def _score(nodes: FloatArray, x: FloatArray, scaling: FloatArray, height: int,
           size_limit: float, max_mass: float) -> float:
    """``1 - mass / max_mass`` of ``x`` (scaled by ``scaling``) over every tree, as river's
    ``_walk_score``.

    Each tree adds ``r_mass * 2 ** depth`` of each node on ``x``'s path, stopping below the
    first node whose reference mass is under ``size_limit``. A NaN in ``x`` is a missing
    feature. The sums are of integers below 2 ** 53, so they are exact in any order; they are
    still made in river's order (per tree, then over the trees).
    """
    x = scale(x, scaling)
    total = 0.0
    for t in range(nodes.shape[0]):
        tree = nodes[t]
        node = 0
        depth_pow = 1.0
        score = 0.0
        stopped = False
        for _ in range(height):
            r = tree[node, R_MASS]
            score += r * depth_pow
            if r < size_limit:
                stopped = True
                break
            node = _child(tree, node, x)
            depth_pow *= 2.0
        if not stopped:
            score += tree[node, R_MASS] * depth_pow
        total += score
    return 1.0 - total / max_mass


@njit(cache=True)
def _learn(nodes: FloatArray, x: FloatArray, scaling: FloatArray, height: int) -> None:
    """Add ``x`` (scaled by ``scaling``) to the latest window's mass of every node on its
    path, as river's ``_walk_learn`` (a NaN in ``x`` is a missing feature)."""
    x = scale(x, scaling)
    for t in range(nodes.shape[0]):
        tree = nodes[t]
        node = 0
        for _ in range(height):
            tree[node, L_MASS] += 1.0
            node = _child(tree, node, x)
        tree[node, L_MASS] += 1.0


class HalfSpaceForest(base.AnomalyDetector):
    """Half-space trees (river's ``HalfSpaceTrees``) as arrays, walked by compiled code.

    Parameters
    ----------
    n_trees, height, window_size, limits, seed
        As ``river.anomaly.HalfSpaceTrees``: a tree of height ``h`` has ``h + 1`` levels;
        ``limits`` maps a feature to its (low, high) range, (0, 1) for any other.

    Learned state: ``features_`` (the features the trees split on, in the order of the
    vectors), ``nodes_`` (per tree and node in heap order: split feature, split value, mass in
    the latest window, mass in the reference window), ``counter_`` (points learned in the
    current window) and ``first_window_``.

    ``learn_one`` and ``score_one`` take a dict, as any river detector; ``learn_array`` and
    ``score_array`` take the same point as a vector over ``features_`` (float64, NaN where a
    feature is missing), for a caller that builds its vectors itself, and optionally a fixed
    ``scaling`` of it (see ``scale``) applied inside the same compiled call.
    """

    def __init__(self, n_trees: int = 10, height: int = 8, window_size: int = 250,
                 limits: Mapping[Hashable, tuple[float, float]] | None = None,
                 seed: int | None = None) -> None:
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.limits = limits
        self.seed = seed
        self._rng = random.Random(seed)
        self.features_: tuple[Hashable, ...] = ()
        self._index: dict[Hashable, int] = {}
        n_nodes = 2 ** (height + 1) - 1
        self.nodes_: FloatArray = np.zeros((0, n_nodes, 4), dtype=np.float64)
        self.counter_ = 0
        self.first_window_ = True
        # river's ``size_limit`` and ``_max_score``, worked out once
        self._size_limit = 0.1 * window_size
        self._max_mass = float(n_trees * window_size * n_nodes)

    # -- growing -----------------------------------------------------------------------------

    @property
    def grown(self) -> bool:
        """Whether the trees exist (they are grown by the first ``learn_one``)."""
        return bool(self.features_)

    def grow(self, features: Sequence[Hashable]) -> None:
        """Grow the trees over ``features`` (in this order), as river's first ``learn_one``
        does over ``sorted(x)``; only needed before ``learn_array`` on a fresh forest."""
        if self.grown:
            raise RuntimeError("the trees are already grown")
        if not features:
            raise ValueError("the trees need at least one feature to split on")
        given = self.limits or {}
        limits: dict[Hashable, Any] = {f: given.get(f, (0.0, 1.0)) for f in features}
        self.features_ = tuple(features)
        self._index = {f: i for i, f in enumerate(self.features_)}
        self.nodes_ = np.zeros((self.n_trees, 2 ** (self.height + 1) - 1, 4))
        for t in range(self.n_trees):
            self._grow_node(t, 0, self.height, limits)

    def _grow_node(self, t: int, node: int, height: int, limits: dict[Hashable, Any]) -> None:
        """river's ``make_padded_tree``, with the same calls on the random generator in the
        same order (this node, then its left subtree, then its right), into heap slots."""
        if height == 0:
            return
        rng = self._rng
        on = rng.choices(population=list(limits.keys()),
                         weights=[limits[i][1] - limits[i][0] for i in limits])[0]
        a = limits[on][0]
        b = limits[on][1]
        at = rng.uniform(a + PADDING * (b - a), b - PADDING * (b - a))
        self.nodes_[t, node, FEATURE] = self._index[on]
        self.nodes_[t, node, THRESHOLD] = at
        tmp = limits[on]
        limits[on] = (tmp[0], at)
        self._grow_node(t, 2 * node + 1, height - 1, limits)
        limits[on] = (at, tmp[1])
        self._grow_node(t, 2 * node + 2, height - 1, limits)
        limits[on] = tmp

    # -- the river interface -----------------------------------------------------------------

    def vector(self, x: Mapping[Hashable, Any]) -> FloatArray:
        """``x`` as a vector over ``features_``: NaN where a feature is absent, +inf where
        its value is NaN (both compare as river compares them: absent takes the busier
        child, NaN goes right)."""
        out = np.empty(len(self.features_), dtype=np.float64)
        get = x.get
        for i, name in enumerate(self.features_):
            v = get(name, _ABSENT)
            if v is _ABSENT:
                out[i] = math.nan
            else:
                f = float(v)
                out[i] = math.inf if f != f else f
        return out

    def learn_one(self, x: dict[base.typing.FeatureName, Any]) -> None:
        if not self.grown:
            self.grow(_sorted(x))
        self.learn_array(self.vector(x))

    def score_one(self, x: dict[base.typing.FeatureName, Any]) -> float:
        if self.first_window_:
            return 0.0
        return self.score_array(self.vector(x))

    # -- the vector interface ----------------------------------------------------------------

    def learn_array(self, x: FloatArray, scaling: FloatArray = NO_SCALING) -> None:
        """Learn a point given as a float64 vector over ``features_`` (NaN: missing), or
        ``scale(x, scaling)``."""
        _learn(self.nodes_, x, scaling, self.height)
        self.counter_ += 1
        if self.counter_ == self.window_size:
            # The latest window becomes the reference one.
            self.nodes_[:, :, R_MASS] = self.nodes_[:, :, L_MASS]
            self.nodes_[:, :, L_MASS] = 0.0
            self.first_window_ = False
            self.counter_ = 0

    def score_array(self, x: FloatArray, scaling: FloatArray = NO_SCALING) -> float:
        """The anomaly score of a point given as a float64 vector over ``features_`` (NaN:
        missing), or of ``scale(x, scaling)``."""
        if self.first_window_:
            return 0.0
        return _score(self.nodes_, x, scaling, self.height, self._size_limit, self._max_mass)

    # -- start-up and conversion -------------------------------------------------------------

    @staticmethod
    def warm() -> None:
        """Compile the kernels now (or load them from numba's disk cache): call at start-up,
        so that no request pays for it. Cheap once done; idempotent."""
        nodes = np.zeros((1, 3, 4), dtype=np.float64)
        x = np.zeros(1, dtype=np.float64)
        scaling = np.ones((3, 1), dtype=np.float64)
        for each in (NO_SCALING, scaling):
            _learn(nodes, x, each, 1)
            _score(nodes, x, each, 1, 0.1, 1.0)
        scale(x, scaling)

    @classmethod
    def from_river(cls, hst: anomaly.HalfSpaceTrees,
                   features: Sequence[Hashable] | None = None) -> HalfSpaceForest:
        """The same model as ``hst``, in arrays: its trees, masses, window position and
        random generator (so a forest converted before any learning grows the same trees).

        ``features`` is the order of the vectors; by default the features ``hst`` grew its
        trees over (sorted), which is what ``learn_one`` would have chosen.
        """
        limits = dict(hst.limits)
        forest = cls(n_trees=hst.n_trees, height=hst.height, window_size=hst.window_size,
                     limits=limits or None, seed=hst.seed)
        forest._rng.setstate(hst.rng.getstate())
        forest.counter_ = hst.counter
        forest.first_window_ = hst._first_window
        if not hst.trees:
            return forest
        split: set[Hashable] = set()
        for nodes in hst._tree_nodes:
            split.update(n.feature for n in nodes if hasattr(n, "feature"))
        order = tuple(features) if features is not None else tuple(_sorted(set(limits) | split))
        missing = split - set(order)
        if missing:
            raise ValueError(f"the trees split on features not in `features`: {_sorted(missing)}")
        forest.features_ = order
        forest._index = {f: i for i, f in enumerate(order)}
        forest.nodes_ = np.zeros((hst.n_trees, 2 ** (hst.height + 1) - 1, 4))
        for t, root in enumerate(hst.trees):
            forest._copy_node(t, 0, root)
        return forest

    def to_river(self) -> anomaly.HalfSpaceTrees:
        """The same model as river's ``HalfSpaceTrees`` (the reference): its trees, masses,
        window position and random generator."""
        hst = anomaly.HalfSpaceTrees(n_trees=self.n_trees, height=self.height,
                                     window_size=self.window_size,
                                     limits=dict(self.limits) if self.limits else None,
                                     seed=self.seed)
        hst.rng.setstate(self._rng.getstate())
        hst.counter = self.counter_
        hst._first_window = self.first_window_
        if self.grown:
            for name in self.features_:
                # river's first learn_one reads (and so stores) the limits of every feature
                hst.limits[name]  # noqa: B018
            hst.trees = [self._river_node(t, 0, self.height) for t in range(self.n_trees)]
            hst._tree_nodes = [list(tree.iter_dfs()) for tree in hst.trees]
        return hst

    def _river_node(self, t: int, node: int, height: int) -> Any:
        row = self.nodes_[t, node]
        masses = {"l_mass": int(row[L_MASS]), "r_mass": int(row[R_MASS])}
        if height == 0:
            return PaddedLeaf(**masses)
        return PaddedBranch(left=self._river_node(t, 2 * node + 1, height - 1),
                            right=self._river_node(t, 2 * node + 2, height - 1),
                            feature=self.features_[int(row[FEATURE])],
                            threshold=float(row[THRESHOLD]), **masses)

    # The nodes are pickled as little-endian bytes: a saved forest does not depend on how a
    # numpy version pickles its arrays (numpy 2 pickles name modules numpy 1 lacks).
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["nodes_"] = (self.nodes_.shape, self.nodes_.astype("<f8").tobytes())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        shape, raw = state["nodes_"]
        self.nodes_ = np.frombuffer(raw, dtype="<f8").astype(np.float64).reshape(shape)

    def copy(self) -> HalfSpaceForest:
        """An independent copy (arrays and random generator included)."""
        other = HalfSpaceForest.__new__(HalfSpaceForest)
        other.__dict__.update(self.__dict__)
        other._rng = random.Random()
        other._rng.setstate(self._rng.getstate())
        other._index = dict(self._index)
        other.nodes_ = self.nodes_.copy()
        return other

    def _copy_node(self, t: int, node: int, source: Any) -> None:
        row = self.nodes_[t, node]
        row[L_MASS] = source.l_mass
        row[R_MASS] = source.r_mass
        if hasattr(source, "feature"):
            row[FEATURE] = self._index[source.feature]
            row[THRESHOLD] = source.threshold
            left, right = source.children
            self._copy_node(t, 2 * node + 1, left)
            self._copy_node(t, 2 * node + 2, right)

    @classmethod
    def _unit_test_params(cls) -> Any:
        yield {"n_trees": 5, "height": 3, "window_size": 20, "seed": 1}
