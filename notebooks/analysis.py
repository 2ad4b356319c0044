"""What the analysts' notebooks share: logins in, the engine's feature frame out, and the
small steps of training, evaluating and publishing that the three notebooks repeat.

Glue only. Every feature comes from the engine itself: logins from a file are replayed
through the engine the service runs (``riskengine.service.build.build_engine`` and
``riskengine.tools.replay.Replayer``: the same extractor, IP databases, rules and feedback loop),
and decisions read back from the service's SQLite store carry the features the service
computed when it decided. Nothing here computes a feature.

Sources (``SOURCE`` in each notebook's parameter cell):

- ``jsonl``: the simulator's labelled wire JSONL (``.jsonl`` or ``.jsonl.gz``; any file of
  ``/v1/score`` bodies, with a ``label`` {``attack``, ``scenario``} where known);
- ``rba``: the public RBA dataset's CSV (``.csv`` or ``.csv.gz``);
- ``decisions``: the service's SQLite store (``riskengine.db``): its kept decisions, with
  the feedback they received as labels (``fraud`` = attack, anything else = customer).
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.catalog import FEATURES, MODEL_FEATURES
from models import persistence
from models.anomaly import AnomalyModel
from models.freeman import ATTRIBUTES, USER_KEY, FreemanModel
from models.sklearn_models import DEPENDS_ON, ClassifierModel, IsolationForestModel
from riskengine.core.learning import verified_good
from riskengine.core.policy import FailoverReason
from riskengine.core.rules import SHIPPED_RULES, Action, Outcome, Ruleset, load_ruleset
from riskengine.core.rules import (
    with_thresholds as with_thresholds,  # 03-thresholds calls it from here
)
from riskengine.service.scorer import Engine, Scored
from riskengine.tools.replay import CHALLENGE_RATES, CUSTOMER, Replayer, Scores, read_jsonl

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sim-150u-30d-seed42.jsonl.gz"
SOURCES = ("jsonl", "rba", "decisions")
FEATURE_NAMES = tuple(f.name for f in FEATURES)
MODEL_FEATURE_NAMES = tuple(f.name for f in MODEL_FEATURES)
# The frame columns the Freeman model reads: features.catalog.FREEMAN_ATTRIBUTES.
FREEMAN_COLUMNS = ATTRIBUTES
# Decision reasons that are not rules.
_NOT_RULES = frozenset({"anomaly_model", "cold_start", "no_risk_signals", *FailoverReason})
_RANK = {None: 0, Action.ALLOW: 0, Action.CHALLENGE: 1, Action.DENY: 2}


@dataclass
class Logins:
    """The feature frame of one source, and where it came from.

    ``frame`` has one row per scored login in time order: ``ts`` (UTC), ``event_id``,
    ``user`` (the pseudonym), ``scenario`` (``customer`` or the attack's kind), ``attack``,
    ``labelled``, the engine's ``decision``, ``score``, ``challenge``, ``rules_hit``
    (comma-separated rule ids), ``floor`` (0/1/2: the strongest action floor among them),
    ``learnable`` (verified good: what the engine lets its model learn), every feature of
    ``features.catalog`` under its own name, and, for file sources, the identity features
    (``features.catalog.IDENTITY_FEATURES``) that the Freeman model reads besides.
    """

    frame: pd.DataFrame
    source: str
    path: str
    rules_version: str
    model_version: str
    report: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def fingerprint(self) -> str:
        return data_fingerprint(self.frame)


# -- logins in --------------------------------------------------------------------------


def read_logins(source: str, path: str | Path, *, limit: int | None = None
                ) -> Iterator[dict[str, Any]]:
    """Labelled wire records from a JSONL or RBA CSV file, in file order."""
    if source == "jsonl":
        lines: Iterable[dict[str, Any]] = read_jsonl(path)
    elif source == "rba":
        from riskengine.tools.datasets.rba import RbaReader

        lines = RbaReader(path, validate=False).read()  # the replay validates each line
    else:
        raise ValueError(f"read_logins reads files of {SOURCES[:2]}, not {source!r}")
    for n, line in enumerate(lines):
        if limit is not None and n >= limit:
            return
        yield line


def engine_for(*, rules: str | Path | None = None, model: str | Path | None = None,
               store: str = "memory:?retention_s=172800") -> Engine:
    """A fresh engine as the service builds it (its IP data, rules, model), with an empty
    store of its own. ``rules``/``model`` None: the shipped ones."""
    from riskengine.service.build import build_engine
    from riskengine.service.settings import Settings

    settings = Settings(env="development", store=store, rules=rules, model=model,
                        model_dir=None, _env_file=None)  # type: ignore[call-arg]
    return build_engine(settings).engine


class _Recording:
    """An engine seen through a replay: every scored login is kept as a frame row."""

    def __init__(self, engine: Engine, lines: Iterable[dict[str, Any]]) -> None:
        self._engine = engine
        self._lines = lines
        self.current: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:  # to_event, confirm, ipintel...
        return getattr(self._engine, name)

    def lines(self) -> Iterator[dict[str, Any]]:
        for line in self._lines:
            self.current = line
            yield line

    def score_event(self, event: Any, *, ip: Any = None, started: float | None = None
                    ) -> Scored:
        scored = self._engine.score_event(event, ip=ip, started=started)
        if scored.features is None or scored.decision is None:
            return scored  # a failover or an event id seen before: nothing was extracted
        fv, decision, body = scored.features, scored.decision, scored.body
        label = self.current.get("label")
        scenario = str((label or {}).get("scenario")
                       or ("attack" if (label or {}).get("attack") else CUSTOMER))
        hits = [r.rule for r in decision.rule_results if r.outcome is Outcome.HIT]
        self.rows.append({
            "ts": event.timestamp,
            "event_id": event.event_id,
            "tenant": event.tenant,
            "user": event.user_key,
            "scenario": scenario,
            "attack": scenario != CUSTOMER,
            "labelled": label is not None,
            "decision": body["decision"],
            "score": float(body["score"]),
            "challenge": body["challenge"],
            "rules_hit": ",".join(r.id for r in hits),
            "floor": max((_RANK[r.action] for r in hits), default=0),
            "learnable": body["decision"] == "allow" and verified_good(event, fv),
            "engine_anomaly_score": decision.model_score,
            "rules_version": body["rules_version"],
            "model_version": body["model_version"],
            **{name: fv.get(name) for name in FEATURE_NAMES},
        })
        return scored


def replay_frame(lines: Iterable[dict[str, Any]], engine: Engine, *, seed: int = 0,
                 warmup_days: float = 0.0) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Replay ``lines`` through ``engine`` (challenges answered as ``riskengine replay``
    does) and return the feature frame and the replay's report."""
    recording = _Recording(engine, lines)
    report = Replayer(recording, warmup_days=warmup_days, seed=seed).run(  # type: ignore[arg-type]
        recording.lines(), progress=False)
    return _frame(recording.rows), report.to_dict()


def decisions_frame(path: str | Path, *, tenant: str | None = None, limit: int | None = None,
                    ruleset: Ruleset | None = None) -> pd.DataFrame:
    """The decisions a SQLite store keeps (``RISKENGINE_DECISION_RETENTION_DAYS``), with the
    features the service computed for each. Labels come from feedback: ``fraud:…`` is an
    attack, ``legit:…`` and no feedback count as customers (``labelled`` tells them apart).
    Read-only; failover decisions (no features) are left out."""
    ruleset = ruleset or load_ruleset()
    actions = {r.id: r.action for r in ruleset.rules}
    # A compact feature vector (schema 3) is a JSON array with its list of names kept apart.
    sql = ("SELECT event_id, tenant, user_key, ts, decision, features, feedback, learned, "
           "names FROM decisions LEFT JOIN feature_names ON feature_names.id = names_id"
           + (" WHERE tenant = ?" if tenant else "") + " ORDER BY ts, event_id"
           + (f" LIMIT {int(limit)}" if limit is not None else ""))
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    try:
        cursor = conn.execute(sql, (tenant,) if tenant else ())
        rows = []
        for event_id, tenant_, user, ts, decision, features, feedback, learned, names in cursor:
            values = json.loads(features)
            if names is not None:
                values = dict(zip(json.loads(names), values, strict=True))
            if not values:
                continue
            body = json.loads(decision)
            fraud = bool(feedback and str(feedback).startswith("fraud"))
            hits = [r["code"] for r in body.get("reasons", []) if r["code"] not in _NOT_RULES]
            rows.append({
                "ts": datetime.fromtimestamp(ts, UTC),
                "event_id": event_id,
                "tenant": tenant_,
                "user": user,
                "scenario": "reported_fraud" if fraud else CUSTOMER,
                "attack": fraud,
                "labelled": feedback is not None,
                "decision": body["decision"],
                "score": float(body["score"]),
                "challenge": body.get("challenge"),
                "rules_hit": ",".join(hits),
                "floor": max((_RANK[actions.get(h)] for h in hits), default=0),
                "learnable": bool(learned),
                "engine_anomaly_score": None,
                "rules_version": body.get("rules_version"),
                "model_version": body.get("model_version"),
                **{name: values.get(name) for name in FEATURE_NAMES},
            })
    finally:
        conn.close()
    return _frame(rows)


def feature_frame(source: str, path: str | Path, *, limit: int | None = None,
                  rules: str | Path | None = None, model: str | Path | None = None,
                  seed: int = 0) -> Logins:
    """The feature frame of a source (see the module docstring), built by the engine."""
    if source not in SOURCES:
        raise ValueError(f"SOURCE must be one of {SOURCES}, not {source!r}")
    started = time.perf_counter()
    if source == "decisions":
        ruleset = load_ruleset(rules)
        frame = decisions_frame(path, limit=limit, ruleset=ruleset)
        # The features were computed by whatever served then; name the latest model.
        return Logins(frame, source, str(path), str(frame["rules_version"].iloc[-1]),
                      str(frame["model_version"].iloc[-1]), seconds=time.perf_counter() - started)
    engine = engine_for(rules=rules, model=model)
    frame, report = replay_frame(read_logins(source, path, limit=limit), engine, seed=seed)
    engine.store.close()
    return Logins(frame, source, str(path), engine.ruleset.label, engine.model_version,
                  report, time.perf_counter() - started)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        raise ValueError("no scored logins in this source")
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def data_fingerprint(frame: pd.DataFrame) -> str:
    """16 hex digits naming the logins (ids, times, labels) a frame holds, in order."""
    digest = hashlib.sha256()
    for event_id, ts, scenario in zip(frame["event_id"], frame["ts"], frame["scenario"],
                                      strict=True):
        digest.update(f"{event_id}\t{ts.isoformat()}\t{scenario}\n".encode())
    return digest.hexdigest()[:16]


def feature_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows' features as the engine hands them to a model (pandas' NaN back to None)."""
    cols = [c for c in FEATURE_NAMES if c in frame.columns]
    out = []
    for values in frame[cols].itertuples(index=False, name=None):
        out.append({c: (None if _missing(v) else v) for c, v in zip(cols, values, strict=True)})
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


# -- time-ordered split and evaluation -------------------------------------------------------


def split_by_time(frame: pd.DataFrame, train_share: float
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Logins before the split time (the first ``train_share`` of them) and from it on.

    Every login of the evaluation part happened at or after every training login, so no
    model sees the future; logins at the very split time all go to evaluation.
    """
    if not 0 < train_share < 1:
        raise ValueError("train_share must be in (0, 1)")
    at = frame["ts"].iloc[min(len(frame) - 1, int(len(frame) * train_share))]
    train, test = frame[frame["ts"] < at], frame[frame["ts"] >= at]
    if train.empty or test.empty:
        raise ValueError("the split leaves one side empty: too few logins or distinct times")
    return train, test, at


def window(frame: pd.DataFrame) -> list[str]:
    return [frame["ts"].iloc[0].isoformat(), frame["ts"].iloc[-1].isoformat()]


def evaluate(scores: Sequence[float] | np.ndarray, frame: pd.DataFrame) -> dict[str, Any]:
    """ROC AUC, average precision, and the catch rate at the thresholds where 1, 2 and 5 %
    of customers' logins would be flagged, as ``riskengine replay`` computes them."""
    from sklearn.metrics import average_precision_score

    tally = Scores()
    for s, scenario in zip(np.asarray(scores, dtype=float), frame["scenario"], strict=True):
        tally.add(float(s), str(scenario))
    out = tally.summary()
    y = frame["attack"].to_numpy(dtype=bool)
    out["average_precision"] = (float(average_precision_score(y, scores))
                                if y.any() and not y.all() else None)
    out["customers"], out["attacks"] = int((~y).sum()), int(y.sum())
    return out


def comparison_table(results: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model: ROC AUC, average precision and catch rates, for display."""
    rows = []
    for name, r in results.items():
        row = {"model": name, "roc_auc": r.get("roc_auc"),
               "average_precision": r.get("average_precision")}
        for rate in CHALLENGE_RATES:
            caught = r.get("catch_rate_at", {}).get(f"{rate:.0%}", {})
            row[f"caught_at_{rate:.0%}"] = caught.get("attacks_caught")
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


# -- models -----------------------------------------------------------------------------------


def _fit_and_calibration(train: pd.DataFrame, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The earlier part of the training logins to fit on, the later to calibrate on."""
    cut = int(len(train) * (1 - share))
    return train.iloc[:cut], train.iloc[cut:]


def fit_river(train: pd.DataFrame, *, seed: int = 42, calibration_share: float = 0.2,
              **hyper: Any) -> AnomalyModel:
    """The service's online model, taught as the engine teaches it: verified-good logins in
    time order, calibrated (as ``riskengine.tools.train``) on the scores the last fifth of its
    lessons had before it learned them."""
    model = AnomalyModel(seed=seed, **hyper)
    lessons = feature_dicts(train[train["learnable"]])
    scores = []
    for values in lessons:
        scores.append(model.score_one(values))
        model.learn_one(values)
    if not lessons:
        raise ValueError("no verified-good logins to learn from")
    model.calibrate(scores[int(len(scores) * (1 - calibration_share)):])
    return model


def fit_isolation_forest(train: pd.DataFrame, *, seed: int = 42, calibration_share: float = 0.2,
                         **hyper: Any) -> IsolationForestModel:
    """Isolation Forest fitted on the verified-good logins of the earlier training part,
    calibrated on those of the later part (which it did not see)."""
    fit_part, calib_part = _fit_and_calibration(train[train["learnable"]], calibration_share)
    model = IsolationForestModel(seed=seed, **hyper).fit(feature_dicts(fit_part))
    model.calibrate(list(model.score_many(feature_dicts(calib_part))))
    return model


def fit_classifier(train: pd.DataFrame, *, seed: int = 42, calibration_share: float = 0.2,
                   estimator: Any = None) -> ClassifierModel:
    """A supervised classifier of attacks on every login of the earlier training part,
    calibrated on the customers' logins of the later part."""
    fit_part, calib_part = _fit_and_calibration(train, calibration_share)
    model = ClassifierModel(estimator=estimator, seed=seed).fit(
        feature_dicts(fit_part), fit_part["attack"].astype(int).to_list())
    good = calib_part[~calib_part["attack"]]
    model.calibrate(list(model.score_many(feature_dicts(good))))
    return model


def score_frame(model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The model's score of every login (``score_one`` each; learns nothing)."""
    rows = feature_dicts(frame)
    if hasattr(model, "score_many"):
        return np.asarray(model.score_many(rows), dtype=float)
    return np.fromiter((model.score_one(v) for v in rows), dtype=float, count=len(rows))


def freeman_scores(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Scores of the Freeman et al. model on ``test``, in its own setting (the paper's and
    ``riskengine replay --baseline freeman``'s): it learns every successful login after
    scoring it, over training and evaluation alike, so it only ever knows the past."""
    if not set(FREEMAN_COLUMNS) <= set(train.columns):
        raise ValueError("this source carries no Freeman attributes (stored decisions do not)")
    model = FreemanModel()
    out = []
    for part, keep in ((train, False), (test, True)):
        attrs = part[list(FREEMAN_COLUMNS)].itertuples(index=False, name=None)
        for user, failed, row in zip(part["user"], part["auth_failed"], attrs, strict=True):
            x = {a: (None if _missing(v) else v) for a, v in zip(ATTRIBUTES, row, strict=True)}
            x[USER_KEY] = user
            if keep:
                out.append(model.score_one(x))
            if not failed:
                model.learn_one(x)
    return np.asarray(out, dtype=float)


def latency_ms(model: Any, frame: pd.DataFrame, n: int = 200) -> float:
    """Median time of one ``score_one`` call, in milliseconds: what the service would add."""
    rows = feature_dicts(frame.head(n))
    times = []
    for values in rows:
        started = time.perf_counter()
        model.score_one(values)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000.0) if times else float("nan")


def choose(results: Mapping[str, Mapping[str, Any]], candidates: Iterable[str],
           rate: str = "2%") -> str:
    """The candidate catching the most attacks at the ``rate`` customer challenge rate,
    ties going to the higher ROC AUC."""
    def key(name: str) -> tuple[float, float]:
        r = results[name]
        caught = r.get("catch_rate_at", {}).get(rate, {}).get("attacks_caught")
        return (caught or 0.0, r.get("roc_auc") or 0.0)

    return max(candidates, key=key)


def save_model(model: Any, out_dir: str | Path, *, name: str, logins: Logins,
               train: pd.DataFrame, test: pd.DataFrame, metrics: Mapping[str, Any],
               comparison: Mapping[str, Any], hyper_parameters: Mapping[str, Any],
               calibration_share: float) -> Path:
    """Save ``model`` with its full card into ``out_dir``, ready for
    ``riskengine models promote``; returns the artifact's path.

    The version names what the model is (kind, data, windows, hyper-parameters), so the
    same training run gives the same version and a different one another.
    """
    depends_on = ("river",) if isinstance(model, AnomalyModel) else DEPENDS_ON
    good = test[~test["attack"]]
    risks = [model.risk(s) for s in score_frame(model, good)] if len(good) else []
    training = {
        "source": logins.source,
        "path": logins.path,
        "notebook": "notebooks/02-train.ipynb",
        "events": int(len(train)),
        "learned": int(getattr(model, "n_learned_", 0)),
        "window": window(train),
        "calibration_share": calibration_share,
        "data_fingerprint": logins.fingerprint,
        "features_by": {"rules_version": logins.rules_version,
                        "model_version": logins.model_version},
    }
    evaluation = {"window": window(test), "events": int(len(test)),
                  "customers": int((~test["attack"]).sum()), "attacks": int(test["attack"].sum())}
    card = {
        "name": name,
        "training": training,
        "evaluation": evaluation,
        "metrics": {**metrics,
                    "customer_logins_with_model_risk": float(np.mean(np.asarray(risks) > 0))
                    if risks else None},
        "comparison": dict(comparison),
        "hyper_parameters": dict(hyper_parameters),
        "calibration": list(model.calibration_),
    }
    identity = json.dumps([type(model).__name__, training, evaluation, card["hyper_parameters"]],
                          sort_keys=True, default=str)
    prefix = {"AnomalyModel": "hst", "IsolationForestModel": "iforest",
              "ClassifierModel": "clf"}.get(type(model).__name__, "model")
    version = f"{prefix}-{hashlib.sha256(identity.encode()).hexdigest()[:8]}"
    out = Path(out_dir) / f"{version}.joblib"
    return persistence.save(model, out, version=version, card=_jsonable(card),
                            depends_on=depends_on)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- thresholds ---------------------------------------------------------------------------------


def threshold_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """For each candidate challenge threshold (every score seen): the share of customers'
    logins that would be challenged or denied, and of attacks caught, counting the rules'
    action floors, which hold whatever the threshold."""
    scores = frame["score"].to_numpy(dtype=float)
    floor = frame["floor"].to_numpy(dtype=int) >= 1
    attack = frame["attack"].to_numpy(dtype=bool)
    candidates = np.unique(np.concatenate([scores[scores > 0], [1.0]]))
    rows = []
    for t in candidates:
        blocked = (scores >= t) | floor
        rows.append({"threshold": float(t),
                     "customers_blocked": float(blocked[~attack].mean()) if (~attack).any()
                     else float("nan"),
                     "attacks_caught": float(blocked[attack].mean()) if attack.any()
                     else float("nan")})
    return pd.DataFrame(rows)


def choose_thresholds(frame: pd.DataFrame, *, target_challenge_rate: float,
                      target_deny_rate: float) -> dict[str, Any]:
    """The challenge threshold ``riskengine backtest`` recommends for the target (the lowest
    at which at most ``target_challenge_rate`` of the customers' logins are challenged or
    denied, by score or by a rule's floor), and above it the lowest deny threshold at which
    at most ``target_deny_rate`` of them are denied.

    The rules' action floors challenge some logins whatever the threshold: when they alone
    exceed the target, no threshold meets it, ``reachable`` is False and the threshold adds
    nothing to the floors.
    """
    from riskengine.tools.backtest import recommend_threshold

    customers, attacks = frame[~frame["attack"]], frame[frame["attack"]]
    if customers.empty:
        raise ValueError("no customers' logins to set thresholds on")

    def pairs(part: pd.DataFrame) -> list[tuple[float, bool]]:
        return [(float(s), bool(f >= 1)) for s, f in zip(part["score"], part["floor"],
                                                           strict=True)]

    recommended = recommend_threshold(pairs(customers), pairs(attacks), target_challenge_rate)
    challenge = float(recommended["challenge_threshold"])
    scores = customers["score"].to_numpy(dtype=float)
    floor = customers["floor"].to_numpy(dtype=int)
    deny = 1.0
    for d in np.unique(np.concatenate([scores[scores > challenge], [1.0]])):
        if float(((scores >= d) | (floor >= 2)).mean()) <= target_deny_rate + 1e-12:
            deny = float(d)
            break
    floor_rate = float(recommended["challenged_by_rule_floors_alone"])
    return {
        "challenge": challenge,
        "deny": deny,
        "target_challenge_rate": target_challenge_rate,
        "target_deny_rate": target_deny_rate,
        "reachable": floor_rate <= target_challenge_rate,
        "floor_only_rate": floor_rate,
        "customers_blocked": float(((scores >= challenge) | (floor >= 1)).mean()),
        "customers_denied": float(((scores >= deny) | (floor >= 2)).mean()),
        "attacks_caught": recommended["attacks_caught"],
    }


def shipped_rules_text() -> str:
    return resources.files("riskengine.data").joinpath(SHIPPED_RULES).read_text("utf-8")
