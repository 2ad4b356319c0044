"""One model for many instances: lessons on a Redis Stream, one elected learner, snapshots.

Scoring instances do not learn in process when they share a Redis store. Each verified-good
login becomes a *lesson* (its features, pseudonymous user, address block, ASN and time) on
a stream: its tenant's ``<prefix>:{t:<tenant>}:lessons``, written by the store's ``record``
in the round trip that records the login, or the shared ``<prefix>:lessons`` (lessons
published apart: feedback's, the outbox's). One learner, elected with a lock that expires unless its
holder renews it, reads the stream, applies the learning caps, teaches the model, and
publishes signed snapshots to Redis (and to its snapshot folder). Every instance follows
``<prefix>:model:active`` and swaps in a new version without a restart, after checking
its signature. A learner that dies stops renewing; another takes the lock within the lock's
time to live and resumes from the stream position recorded in the last snapshot, so no
lesson published after that snapshot is lost.

::

    instance 1 ─┐  XADD lesson          ┌──────────────┐  SET model:active, model:<v>
    instance 2 ─┼───────────────────►   │ learner (1)  │ ─────────────────────────────┐
    instance N ─┘  ◄── GET model:active └──────────────┘                              │
         ▲               + verify signature, swap                                     │
         └────────────────────────────────────────────────────────────────────────────┘
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from models import snapshots
from models.calibration import DeploymentCalibration
from models.outcome import OutcomeModel
from models.persistence import OUTCOME_FOLDER, card_path, read_card
from riskengine.adapters.stores import jsontext
from riskengine.adapters.stores.base import StoreError
from riskengine.adapters.stores.redis import LESSONS_MAX_LEN, RedisStore, lesson_streams_key
from riskengine.core.learning import LearningGate, OutcomeLesson, OutcomeTeacher

log = logging.getLogger("riskengine.learner")

# The outcome model's lessons, lock and published versions live under their own prefix.
OUTCOME_PREFIX = "re:outcome"
# How a learner applies one lesson read from its stream to its model; True when learned.
Teach = Callable[[Any, Mapping[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Slot:
    """Which of an engine's two learning models a keeper or follower looks after: the
    anomaly model (``model``, ``swap_model``...) or the outcome model (``outcome``...)."""

    attribute: str
    version_attribute: str
    card_attribute: str
    swap_method: str
    name_method: str
    frozen_method: str
    calibration_attribute: str | None = None

    def model(self, engine: Any) -> Any:
        return getattr(engine, self.attribute)

    def version(self, engine: Any) -> str:
        return str(getattr(engine, self.version_attribute))

    def card(self, engine: Any) -> dict[str, Any]:
        return dict(getattr(engine, self.card_attribute))

    def swap(self, engine: Any, model: Any, version: str, card: Mapping[str, Any]) -> None:
        getattr(engine, self.swap_method)(model, version, card)

    def name(self, engine: Any, version: str, card: Mapping[str, Any]) -> None:
        getattr(engine, self.name_method)(version, card)

    def frozen(self, engine: Any) -> Any:
        return getattr(engine, self.frozen_method)()

    def calibration(self, engine: Any) -> dict[str, Any]:
        """What the model's calibration rests on, for its snapshot's card (empty when the
        model keeps none)."""
        if self.calibration_attribute is None:
            return {}
        return {"calibration": getattr(engine, self.calibration_attribute).card()}


ANOMALY_SLOT = Slot("model", "model_version", "model_card", "swap_model", "name_model",
                    "model_frozen", calibration_attribute="calibration")
OUTCOME_SLOT = Slot("outcome", "outcome_version", "outcome_card", "swap_outcome",
                    "name_outcome", "outcome_frozen")

# Stream entries read (or deleted) per round trip when a user's lessons are looked for: a
# page answers well within a scoring call's deadline.
STREAM_PAGE = 200

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def connect(url: str, *, timeout_s: float) -> redis.Redis:
    """A client whose every call fails within ``timeout_s`` (no hidden retries)."""
    return redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s,
                                retry=Retry(NoBackoff(), 0))


class Keys:
    def __init__(self, prefix: str = "re") -> None:
        self.lessons = f"{prefix}:lessons"
        # The tenants' streams: lessons the Redis store's ``record`` carries (see
        # ``riskengine.adapters.stores.redis.lessons_key``), listed in this set.
        self.streams = lesson_streams_key(prefix)
        self.lock = f"{prefix}:learner:lock"
        self.active = f"{prefix}:model:active"
        self.model = f"{prefix}:model:"

    def version(self, version: str) -> str:
        return self.model + version

    def every_stream(self, r: redis.Redis) -> list[str]:
        """The shared stream and every tenant's stream listed so far."""
        listed = sorted(m.decode() if isinstance(m, bytes) else str(m)
                        for m in r.smembers(self.streams))
        return [self.lessons, *listed]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisLessons:
    """Where scoring instances put their lessons: the shared stream (``publish``; the Redis
    store's ``record`` writes a login's lesson to its tenant's stream instead, in the same
    round trip, when it is handed one). Reading and erasing cover both."""

    def __init__(self, url: str, *, prefix: str = "re", timeout_s: float = 0.05,
                 max_len: int = LESSONS_MAX_LEN) -> None:
        self._r = connect(url, timeout_s=timeout_s)
        self._keys = Keys(prefix)
        self.url, self.prefix = url, prefix
        self.max_len = max_len

    def carried_by(self, store: object) -> bool:
        """Whether ``store``'s ``record`` may carry the lessons of the logins it records
        (``RedisStore.record(..., lesson=...)``), in place of ``publish``: a Redis store on
        this sink's database and prefix, whose tenants' streams this sink reads."""
        return (isinstance(store, RedisStore) and store.url == self.url
                and store.prefix == self.prefix)

    def publish(self, lesson: Mapping[str, Any]) -> None:
        try:
            self._r.xadd(self._keys.lessons, {"lesson": jsontext.dumps(lesson)},
                         maxlen=self.max_len, approximate=True)
        except (redis.RedisError, OSError) as exc:
            raise StoreError(f"publishing a lesson failed: {type(exc).__name__}") from None

    def of_users(self, user_keys: Collection[str]) -> list[tuple[str, dict[str, Any]]]:
        """(entry, lesson) of every lesson on the streams taught by one of these user
        pseudonyms, each stream's oldest first: the right of access reaches the streams
        too. An entry is ``<stream id>`` on the shared stream, ``<stream key> <stream id>``
        on a tenant's. Walks the whole streams, ``STREAM_PAGE`` entries a round trip."""
        found: list[tuple[str, dict[str, Any]]] = []
        try:
            for stream in self._keys.every_stream(self._r):
                for entry_id, lesson in self._walk(stream):
                    if lesson.get("user") in user_keys:
                        where = entry_id if stream == self._keys.lessons \
                            else f"{stream} {entry_id}"
                        found.append((where, lesson))
        except (redis.RedisError, OSError) as exc:
            raise StoreError(f"reading the lessons failed: {type(exc).__name__}") from None
        return found

    def forget(self, user_keys: Collection[str]) -> int:
        """Delete every lesson of these user pseudonyms from the stream (a user's erasure);
        returns how many went. A lesson the learner has already learned is in the model's
        counts, which name nobody; one not yet learned is never learned.

        Redis marks a deleted entry deleted in its block of entries and frees the block
        once every entry in it is deleted or trimmed (``max_len``): until then the entry's
        bytes stay in memory and in RDB snapshots, out of every read (XRANGE, XREAD)."""
        by_stream: dict[str, list[str]] = {}
        for entry, _ in self.of_users(user_keys):
            stream, _, entry_id = entry.rpartition(" ")
            by_stream.setdefault(stream or self._keys.lessons, []).append(entry_id)
        gone = 0
        try:
            for stream, ids in by_stream.items():
                for i in range(0, len(ids), STREAM_PAGE):
                    gone += int(self._r.xdel(stream, *ids[i:i + STREAM_PAGE]))
        except (redis.RedisError, OSError) as exc:
            raise StoreError(f"erasing lessons failed: {type(exc).__name__}") from None
        return gone

    def _walk(self, stream: str) -> Iterator[tuple[str, dict[str, Any]]]:
        start = "-"
        while True:
            page = self._r.xrange(stream, min=start, count=STREAM_PAGE)
            for raw_id, fields in page:
                try:
                    lesson = jsontext.loads(fields[b"lesson"])
                except (KeyError, ValueError):
                    continue  # not a lesson this code wrote
                yield _text(raw_id), lesson
            if len(page) < STREAM_PAGE:
                return
            start = "(" + _text(page[-1][0])


def _publish(r: redis.Redis, keys: Keys, artifact: Path) -> None:
    """Copy a signed snapshot into Redis and make it the active version."""
    version = artifact.stem
    r.hset(keys.version(version), mapping={
        "artifact": artifact.read_bytes(),
        "card": card_path(artifact).read_bytes(),
        "sig": artifact.with_suffix(".sig").read_bytes(),
    })
    r.set(keys.active, version)


def fetch(
    r: redis.Redis, keys: Keys, version: str, folder: Path, *, key: bytes
) -> tuple[Any, dict[str, Any]]:
    """Download version ``version`` into ``folder`` and load it after checking its signature."""
    blob = r.hgetall(keys.version(version))
    if not blob:
        raise StoreError(f"model {version} is active but not published")
    folder.mkdir(parents=True, exist_ok=True)
    artifact = folder / f"{version}.joblib"
    artifact.write_bytes(blob[b"artifact"])
    card_path(artifact).write_bytes(blob[b"card"])
    artifact.with_suffix(".sig").write_bytes(blob[b"sig"])
    return snapshots.load_snapshot(artifact, key=key)


class Learner:
    """The one process that teaches the shared model (while it holds the lock).

    Parameters
    ----------
    url, prefix
        The Redis the scoring instances share.
    model, version, training
        The model to start from when nothing is published yet, and what its lineage was
        trained on (its card's ``training``), carried on to every published card.
    key, folder
        Snapshot signing key and the folder snapshots are written to.
    gate
        The learning caps (``riskengine.core.learning.LearningGate``).
    lock_ttl_s, snapshot_every_s
        How long the lock outlives a silent holder; how often a snapshot is published
        while lessons keep coming.
    teach
        How one lesson from the stream teaches the model (True when it did); by default
        the anomaly model's: ``gate`` admits it, then ``model.learn_one(values)``.
    outcome
        Also teach the outcome model from its own stream (``OUTCOME_PREFIX``), in the same
        process and loop: ``outcome_learner`` (see ``outcome_learner``).
    """

    def __init__(self, url: str, *, model: Any, version: str, key: bytes, folder: Path,
                 training: dict[str, Any] | None = None, gate: LearningGate | None = None,
                 prefix: str = "re", lock_ttl_s: float = 5.0, snapshot_every_s: float = 10.0,
                 batch: int = 500, teach: Teach | None = None, outcome: bool = True) -> None:
        self._r = connect(url, timeout_s=max(1.0, lock_ttl_s / 4))
        self._keys = Keys(prefix)
        self.model, self.version, self.training = model, version, training
        self.key, self.folder = key, Path(folder)
        self.gate = gate or LearningGate()
        self.lock_ttl_ms = int(lock_ttl_s * 1000)
        self.snapshot_every_s = snapshot_every_s
        self.batch = batch
        self.node = uuid.uuid4().hex
        self.leader = False
        # Where reading has got to on each stream (the shared one and the tenants'); a
        # stream not in it is read from its start.
        self.cursors: dict[str, str] = {}
        self._pending = 0
        self._published_at = time.monotonic()
        self._renew = self._r.register_script(_RENEW)
        self.teach: Teach = teach or self._teach_anomaly
        # The model's scale, refitted on the verified-good logins this deployment teaches.
        self.calibration = DeploymentCalibration()
        self.outcome_learner = outcome_learner(
            url, key=key, folder=self.folder / OUTCOME_FOLDER, prefix=f"{prefix}:outcome",
            lock_ttl_s=lock_ttl_s, snapshot_every_s=snapshot_every_s, batch=batch,
        ) if outcome else None

    def _teach_anomaly(self, model: Any, lesson: Mapping[str, Any]) -> bool:
        if not self.gate.admit(user=lesson["user"], block=lesson["block"],
                               asn=lesson.get("asn"), ts=float(lesson["ts"])):
            return False
        score = lesson.get("score")
        self.calibration.observe(model, float(score) if score is not None else None)
        model.learn_one(lesson["values"])
        return True

    def _hold_lock(self) -> bool:
        if self._r.set(self._keys.lock, self.node, nx=True, px=self.lock_ttl_ms):
            return True
        return bool(self._renew(keys=[self._keys.lock], args=[self.node, self.lock_ttl_ms]))

    def _take_over(self) -> None:
        """Start from the last published model and the stream position it had learned to."""
        active = self._r.get(self._keys.active)
        if active is not None:
            version = active.decode()
            if version != self.version:
                self.model, card = fetch(self._r, self._keys, version, self.folder, key=self.key)
                self.version = version
            else:
                artifact = self.folder / f"{version}.joblib"
                card = read_card(artifact) if card_path(artifact).exists() else {}
            # Snapshots before the tenants' streams kept the shared stream's position only.
            self.cursors = {self._keys.lessons: str(card.get("stream_cursor", "0-0")),
                            **{str(k): str(v)
                               for k, v in dict(card.get("stream_cursors", {})).items()}}
            self.training = card.get("training", self.training)
        log.warning("learner %s leads from model %s, stream position %s", self.node[:8],
                    self.version, self.cursor)

    @property
    def cursor(self) -> str:
        """Where reading has got to on the shared stream."""
        return self.cursors.get(self._keys.lessons, "0-0")

    def step(self, block_ms: int | None = 200) -> int:
        """One round: keep or take the lock, apply a batch of lessons from each stream,
        maybe publish."""
        if not self._hold_lock():
            self.leader = False
            return 0
        if not self.leader:
            self._take_over()
            self.leader = True
        applied = 0
        streams = {key: self.cursors.get(key, "0-0") for key in self._keys.every_stream(self._r)}
        answer = self._r.xread(streams, count=self.batch, block=block_ms)
        for stream, messages in answer or []:
            key = _text(stream)
            for msg_id, fields in messages:
                lesson = jsontext.loads(fields[b"lesson"])
                self.cursors[key] = _text(msg_id)
                if self.teach(self.model, lesson):
                    applied += 1
        self._pending += applied
        if self._pending and time.monotonic() - self._published_at >= self.snapshot_every_s:
            self.publish()
        return applied

    def publish(self) -> str:
        """Sign and publish the current model as the next version of its lineage."""
        taken = {s.version for s in snapshots.list_snapshots(self.folder)} \
            if self.folder.exists() else set()
        version = snapshots.next_version(self.version, taken)
        artifact = snapshots.save_snapshot(self.model, self.folder, version=version,
                                           parent=self.version, key=self.key,
                                           card={"stream_cursor": self.cursor,
                                                 "stream_cursors": dict(self.cursors),
                                                 "calibration": self.calibration.card()},
                                           training=self.training)
        _publish(self._r, self._keys, artifact)
        self.version = version
        self._pending = 0
        self._published_at = time.monotonic()
        log.warning("published model %s", version)
        return version

    def run(self, stop: threading.Event) -> None:
        learners = [self, *([self.outcome_learner] if self.outcome_learner else [])]
        while not stop.is_set():
            try:
                self.step()
                if self.outcome_learner is not None:
                    self.outcome_learner.step(block_ms=None)  # its stream, without waiting
            except (redis.RedisError, OSError) as exc:
                for learner in learners:
                    learner.leader = False
                log.warning("learner: redis unavailable (%s); retrying", type(exc).__name__)
                stop.wait(1.0)
        for learner in learners:
            if learner.leader and learner._pending:
                learner.publish()


def outcome_learner(url: str, *, key: bytes, folder: Path, prefix: str = OUTCOME_PREFIX,
                    model: OutcomeModel | None = None, version: str = "outcome-prior",
                    teacher: OutcomeTeacher | None = None, **kw: Any) -> Learner:
    """The learner of the outcome model: lessons from the ``prefix`` stream (what
    ``Engine.learn_outcome`` and the sampled verified-good logins publish), taught through
    an ``OutcomeTeacher`` (caps, undo of a contradicted lesson), snapshots in ``folder``.
    It starts from ``model`` (a model at its prior when None) unless one is published."""
    teacher = teacher or OutcomeTeacher()

    def teach(target: Any, lesson: Mapping[str, Any]) -> bool:
        return teacher.teach(target, OutcomeLesson.from_dict(lesson))

    return Learner(url, model=model if model is not None else OutcomeModel(), version=version,
                   key=key, folder=folder, prefix=prefix, teach=teach, outcome=False,
                   training={"source": "outcomes fed back to this deployment, from the "
                                       "hand-set combination as prior"}, **kw)


class ModelFollower:
    """Keeps a scoring instance on the published active model."""

    def __init__(self, url: str, engine: Any, *, key: bytes, prefix: str = "re",
                 timeout_s: float = 0.5, slot: Slot = ANOMALY_SLOT) -> None:
        self._r = connect(url, timeout_s=timeout_s)
        self._keys = Keys(prefix)
        self.engine = engine
        self.key = key
        self.slot = slot

    def tick(self) -> bool:
        """Swap in the active model if it is not the one serving; True when swapped."""
        active = self._r.get(self._keys.active)
        if active is None or active.decode() == self.slot.version(self.engine):
            return False
        # The artifact is on disk only while it is checked and loaded: a folder kept per
        # follower was never removed (one left behind by every instance on a shared store).
        with tempfile.TemporaryDirectory(prefix="riskengine-models-") as folder:
            model, card = fetch(self._r, self._keys, active.decode(), Path(folder),
                                key=self.key)
        self.slot.swap(self.engine, model, str(card["model_version"]), card)
        log.warning("now serving published model %s", card["model_version"])
        return True

    def run(self, stop: threading.Event, interval_s: float = 1.0) -> None:
        while not stop.wait(interval_s):
            try:
                self.tick()
            except Exception:  # a failed poll must not stop the next one
                log.exception("model follow failed")
