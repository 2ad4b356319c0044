"""The user's rights over their data: export everything stored, erase it (admin scope).

The user's identifier travels in the JSON body, never in the URL: user ids are phone numbers
and e-mail addresses, and URLs end up in proxies' and load balancers' access logs. (The
routes of earlier versions, ``GET /v1/users/{user_id}/data`` and ``DELETE
/v1/users/{user_id}``, are gone: an alias would keep the leak.) A user id may hold any
character the wire allows, ``/`` included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from riskengine.adapters.auth import Scope
from riskengine.api.deps import EngineDep
from riskengine.api.errors import COMMON_ERRORS, documented
from riskengine.api.security import AUTH_RESPONSES, for_tenant, require
from riskengine.core.wire import Clean, TenantText, UserIdText
from riskengine.service.rights import export_document

router = APIRouter(prefix="/v1/users", tags=["user rights"],
                   responses={**COMMON_ERRORS, **AUTH_RESPONSES},
                   dependencies=[require(Scope.ADMIN)])


class UserRef(BaseModel):
    """Which user: the identifier as the auth service sends it to ``/v1/score``."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)

    # The same fields, with the same checks, as ``/v1/score``'s request.
    tenant: Clean[TenantText] = "default"
    user_id: Clean[UserIdText] = Field(description="The user's identifier, exactly as scored")


class Erased(BaseModel):
    tenant: str
    erased_records: int


@router.post("/data", responses=documented(503), operation_id="export_user")
def export_user(request: Request, body: UserRef, engine: EngineDep) -> Any:
    """Everything stored about the user, machine-readable: pseudonymized values with what
    they mean, first and last seen, counts, and every decision kept. 503 while the store is
    down."""
    for_tenant(request, body.tenant)
    return export_document(body.tenant, engine.export_user(body.tenant, body.user_id),
                           now=datetime.now(UTC))


@router.post("/erase", response_model=Erased, responses=documented(503),
             operation_id="erase_user")
def erase_user(request: Request, body: UserRef, engine: EngineDep) -> Any:
    """Erase the user from the store, its decisions, counters and the outbox; the next
    login of this user is treated as a new user's. 503 while the store is down (nothing is
    reported erased that was not)."""
    for_tenant(request, body.tenant)
    return {"tenant": body.tenant, "erased_records": engine.erase_user(body.tenant, body.user_id)}
