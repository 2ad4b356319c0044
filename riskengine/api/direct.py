"""A route served without FastAPI's per-request work, for the login path.

FastAPI solves a route's dependencies anew on every request (six calls of
``solve_dependencies`` for the scoring route: the key check, its two schemes, the engine,
the metrics), and its handler does more around them; together ~80 us of a request in
process, more than the bare route's whole request (``bench/http_steps.py``). ``direct``
serves one declared ``APIRoute`` as a plain Starlette route placed ahead of the routers:
the key check its ``require`` dependency declares, then its endpoint with the request. The
``APIRoute`` stays the definition: the OpenAPI document is generated from it as before, and
it would serve the same answers if the direct route were taken away (the tests compare the
two).

Only a route that needs nothing else can be served so: an ``async`` endpoint taking the
request alone, whose declared dependencies (its own and its router's) are ``require``
checks. Anything more is refused when the app is made, not skipped. Dependencies added when
a router is included in the app (``include_router(..., dependencies=...)``) are not the
route's and would not be seen: ``create_app`` includes ``routes.router`` without any.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from riskengine.api.security import Scope, authorize, checked_scopes


def declared_scopes(route: APIRoute) -> tuple[tuple[Scope, ...], ...]:
    """The scope sets of ``route``'s ``require`` checks, each to be passed; ``TypeError`` if
    the route declares anything else (a parameter, a body, another dependency)."""
    dependant = route.dependant
    declared = [name for name, params in (
        ("path", dependant.path_params), ("query", dependant.query_params),
        ("header", dependant.header_params), ("cookie", dependant.cookie_params),
        ("body", dependant.body_params)) if params]
    checks = []
    for dependency in dependant.dependencies:
        scopes = checked_scopes(dependency.call)
        if scopes is None:
            declared.append(f"dependency {getattr(dependency.call, '__name__', dependency)}")
        else:
            checks.append(scopes)
    if declared or dependant.request_param_name is None:
        raise TypeError(f"{route.path} cannot be served directly: its endpoint must take the "
                        f"request alone, with require() checks only; it declares "
                        f"{', '.join(declared) or 'no request parameter'}")
    return tuple(checks)


def direct(route: APIRoute) -> Route:
    """A Starlette route serving ``route``'s path and methods: its key checks, then its
    endpoint. Not in the OpenAPI document (``route`` is)."""
    checks = declared_scopes(route)
    endpoint: Callable[[Request], Awaitable[Response]] = route.endpoint
    if not inspect.iscoroutinefunction(endpoint):
        raise TypeError(f"{route.path} cannot be served directly: its endpoint is not async")

    async def serve(request: Request) -> Response:
        for scopes in checks:
            authorize(request, scopes)
        return await endpoint(request)

    serve.__name__ = serve.__qualname__ = f"direct_{route.name}"
    return Route(route.path, serve, methods=sorted(route.methods), name=route.name,
                 include_in_schema=False)


def find_route(routes: list[Any], endpoint: Callable[..., Any]) -> APIRoute:
    """The ``APIRoute`` among ``routes`` whose endpoint is ``endpoint``."""
    for route in routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            return route
    raise LookupError(f"no route serves {endpoint.__qualname__}")


__all__ = ["declared_scopes", "direct", "find_route"]
