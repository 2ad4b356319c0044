"""The user's rights over their data: export everything stored, erase it (admin scope)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from riskengine.adapters.auth import Scope
from riskengine.api.deps import EngineDep
from riskengine.api.security import require
from riskengine.core.wire import ERROR_RESPONSES
from riskengine.service.rights import export_document

router = APIRouter(prefix="/v1/users", tags=["user rights"], responses=ERROR_RESPONSES,
                   dependencies=[require(Scope.ADMIN)])

UserId = Annotated[str, Path(min_length=1, max_length=256)]
Tenant = Annotated[str, Query(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]


@router.get("/{user_id}/data")
def export_user(user_id: UserId, engine: EngineDep, tenant: Tenant = "default") -> Any:
    """Everything stored about the user, machine-readable: pseudonymized values with what
    they mean, first and last seen, counts, and every decision kept."""
    return export_document(tenant, engine.export_user(tenant, user_id),
                           now=datetime.now(UTC))


@router.delete("/{user_id}")
def erase_user(user_id: UserId, engine: EngineDep, tenant: Tenant = "default") -> Any:
    """Erase the user from the store, its decisions, counters and the outbox; the next
    login of this user is treated as a new user's."""
    return {"tenant": tenant, "erased_records": engine.erase_user(tenant, user_id)}
