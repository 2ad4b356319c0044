"""What the shell keeps in the outbox while the shared store fails: one type per kind.

Each item knows its idempotency key, its JSON payload and whom it concerns (tenant, user
pseudonym, event id), so that a user's erasure finds the user's items by key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, ClassVar

from riskengine.adapters.outbox import OutboxItem, Owner
from riskengine.core.decide import Lesson
from riskengine.core.feedback import Label, Source
from riskengine.core.records import Attempt, StoredDecision


class Kind(StrEnum):
    RECORD = "record"
    FEEDBACK = "feedback"
    LESSON = "lesson"


@dataclass(frozen=True, slots=True)
class RecordItem:
    """A decision answered while the store was down, and its attempt, to count later."""

    decision: StoredDecision
    attempt: Attempt
    kind: ClassVar[Kind] = Kind.RECORD

    @property
    def key(self) -> str:
        return self.decision.event_id

    @property
    def owner(self) -> Owner:
        return Owner(self.decision.tenant, self.decision.user_key, self.decision.event_id)

    def payload(self) -> dict[str, Any]:
        return {"decision": asdict(self.decision), "attempt": asdict(self.attempt)}


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """An outcome fed back while the store was down."""

    tenant: str
    event_id: str
    label: Label
    source: Source
    kind: ClassVar[Kind] = Kind.FEEDBACK

    @property
    def key(self) -> str:
        return f"{self.tenant}:{self.event_id}:{self.label.value}:{self.source.value}"

    @property
    def owner(self) -> Owner:
        return Owner(self.tenant, None, self.event_id)

    def payload(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "event_id": self.event_id, "label": self.label.value,
                "source": self.source.value}


@dataclass(frozen=True, slots=True)
class LessonItem:
    """A lesson the shared learner could not be sent."""

    lesson: Lesson
    kind: ClassVar[Kind] = Kind.LESSON

    @property
    def key(self) -> str:
        return f"{self.lesson.user}:{self.lesson.ts}"

    @property
    def owner(self) -> Owner:
        return Owner(None, self.lesson.user, None)

    def payload(self) -> dict[str, Any]:
        return self.lesson.to_dict()


Queued = RecordItem | FeedbackItem | LessonItem


def decode(item: OutboxItem) -> Queued:
    """The typed item an outbox row holds; ``ValueError`` for a kind this version does not
    know."""
    data = item.payload
    if item.kind == Kind.RECORD:
        return RecordItem(StoredDecision(**data["decision"]), Attempt(**data["attempt"]))
    if item.kind == Kind.FEEDBACK:
        return FeedbackItem(data["tenant"], data["event_id"], Label(data["label"]),
                            Source(data["source"]))
    if item.kind == Kind.LESSON:
        return LessonItem(Lesson.from_dict(data))
    raise ValueError(f"outbox item {item.id} has an unknown kind")
