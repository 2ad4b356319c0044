"""A JSON request body validated once, straight from its bytes, into its pydantic model.

FastAPI, for a body declared as a parameter (``body: ScoreRequest``), decodes the JSON into
Python objects (``json.loads``), parses the content type with ``email.message``, and then
validates the objects into the model. ``parse(Model, raw)`` hands the raw bytes to
pydantic's core instead (``Model.model_validate_json``: one pass, in Rust, no intermediate
dict); the scoring route calls it on ``await request.body()`` (``json_body(Model)`` is the
same as a dependency, which costs FastAPI's solving of one more dependency)::

    @router.post("/v1/score", openapi_extra=request_body(ScoreRequest))
    async def score(request: Request) -> Response:
        body = parse(ScoreRequest, await request.body())

It refuses exactly what FastAPI refuses, with the same errors. A body the fast path does not
accept goes through FastAPI's own steps (``json.loads``, then ``Model.model_validate``, the
errors' locations under ``body``), which is the reference: a refusal is rare, and JSON that
only one of the two parsers reads (a lone UTF-16 surrogate, ``NaN``, a byte-order mark) is
judged as before, as are the messages that differ between the two (``Input should be an
object`` from JSON against ``Input should be a valid dictionary ...``). An empty body is a
missing body (422 naming ``body``), a body that is not JSON a ``json_invalid`` error (the
service's handler answers 400). ``tests/api/test_body.py`` holds the two paths to the same
answers.

One order differs, by design: a route that parses its body itself does so after its
dependencies, the key check included, so a caller without a valid key gets 401 for a body
that is not JSON too (FastAPI read a declared body first, and answered that one 400).

FastAPI documents a body it does not parse only if told: ``request_body(Model)`` is the
route's ``openapi_extra``, and ``add_schemas`` puts the model's schema among the
components (``create_app`` does), so that the OpenAPI document is the one FastAPI wrote
for the declared parameter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

# Where FastAPI puts the schemas its OpenAPI document refers to.
REF_TEMPLATE = "#/components/schemas/{model}"

M = TypeVar("M", bound=BaseModel)

_MISSING = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}


def parse(model: type[M], raw: bytes) -> M:
    """``raw`` validated into ``model``; raises ``RequestValidationError`` as FastAPI would
    for the same body declared as a parameter of that model."""
    if not raw:
        raise RequestValidationError([_MISSING])
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        return _as_fastapi_does(model, raw)


def _as_fastapi_does(model: type[M], raw: bytes) -> M:
    """FastAPI's own steps for a JSON body: ``json.loads`` (Starlette's ``Request.json``),
    then validation of the Python value, errors located under ``body``."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:  # a UnicodeDecodeError is a ValueError, not this
        raise RequestValidationError([{
            "type": "json_invalid", "loc": ("body", exc.pos), "msg": "JSON decode error",
            "input": {}, "ctx": {"error": exc.msg}}]) from None
    except (ValueError, RecursionError):
        # Bytes that are not text, or arrays nested past the parser's depth: FastAPI
        # answers its generic 400 for these, and the service's handler the same 400.
        raise RequestValidationError([{
            "type": "json_invalid", "loc": ("body", 0), "msg": "JSON decode error",
            "input": {}, "ctx": {"error": "not text, or nested too deeply"}}]) from None
    try:
        # As FastAPI validates a body field (``ModelField.validate``).
        return model.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
        ) from None


def json_body(model: type[M]) -> Any:
    """A dependency (``Depends``) giving the request body validated into ``model``."""

    async def body(request: Request) -> M:
        return parse(model, await request.body())

    body.__name__ = f"{model.__name__}_body"
    dependency: Callable[[Request], Coroutine[Any, Any, M]] = body
    return Depends(dependency)


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """A route's ``openapi_extra``: a required JSON body of ``model``, as FastAPI documents
    a body parameter."""
    return {"requestBody": {
        "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(
            model=model.__name__)}}},
        "required": True,
    }}


def add_schemas(openapi: dict[str, Any], *models: type[BaseModel]) -> dict[str, Any]:
    """``openapi`` with the schemas of ``models`` (and of the models they hold) among its
    components, where a route's ``request_body`` refers to them: the very schemas FastAPI
    writes for a body parameter of the model (taken from a throwaway app declaring one)."""
    probe = FastAPI()
    for i, model in enumerate(models):
        async def declared(body: Any) -> None:  # pragma: no cover - never called
            return None

        declared.__annotations__ = {"body": model, "return": None}
        probe.post(f"/{i}")(declared)
    written = probe.openapi()["components"]["schemas"]
    wanted = set()
    for model in models:
        wanted |= {model.__name__, *model.model_json_schema(ref_template=REF_TEMPLATE)
                   .get("$defs", {})}
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name in wanted:
        schemas.setdefault(name, written[name])
    # FastAPI lists its components by name.
    openapi["components"]["schemas"] = dict(sorted(schemas.items()))
    return openapi


__all__ = ["REF_TEMPLATE", "add_schemas", "json_body", "parse", "request_body"]
