"""Security staff's routes (admin scope): rules reload, shadow report, the tuning page."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any

import yaml
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse

from riskengine.adapters.auth import Scope
from riskengine.api.deps import BuiltDep, SettingsDep
from riskengine.api.errors import COMMON_ERRORS, documented, error_response
from riskengine.api.security import AUTH_RESPONSES, require, require_all_tenants
from riskengine.core.rules import RulesetError, parse_ruleset, with_thresholds
from riskengine.core.wire import InvalidRequest
from riskengine.service.build import ruleset_text

# Rules, thresholds and the shadow report are every tenant's: a key for all tenants only.
router = APIRouter(tags=["tuning"], dependencies=[require(Scope.ADMIN), require_all_tenants()],
                   responses={**COMMON_ERRORS, **AUTH_RESPONSES})
# The page itself holds no data (everything comes from the admin routes above it), so it is
# served to anyone; it asks for an admin key and sends it with each of its requests.
page = APIRouter()


@router.post("/v1/admin/rules/reload", responses=documented(409))
def reload_rules(built: BuiltDep) -> Any:
    """Re-read the live and shadow ruleset files; an invalid file is refused (422, with the
    rule and field named) and the rules in force keep serving."""
    if built.rules is None:
        return error_response(409, "rules are not file-backed")
    try:
        return built.rules.reload()
    except RulesetError as exc:
        return error_response(422, str(exc), [], serving=built.rules.status())


@router.get("/v1/admin/rules")
def rules_status(built: BuiltDep) -> Any:
    """The rulesets in force: live, shadow, tenants with their own overrides."""
    rules = built.engine.ruleset
    return {
        **(built.rules.status() if built.rules else {"live": rules.label}),
        "thresholds": {"challenge": rules.thresholds.challenge, "deny": rules.thresholds.deny},
        "tenant_thresholds": {t: {"challenge": r.thresholds.challenge,
                                  "deny": r.thresholds.deny} for t, r in rules.tenants.items()},
    }


@router.get("/v1/admin/shadow/report")
def shadow_report(built: BuiltDep) -> Any:
    """Live versus candidate decisions since the candidate was loaded."""
    return {"shadow_enabled": built.engine.shadow is not None,
            **built.engine.shadow_stats.report()}


@router.get("/v1/admin/ui/data")
def ui_data(built: BuiltDep, settings: SettingsDep) -> Any:
    """What the tuning page plots: the latest backtest's score histograms and rule hit rates."""
    path = settings.backtest_report
    rules = built.engine.ruleset
    out: dict[str, Any] = {"rules_version": rules.label,
                           "thresholds": {"challenge": rules.thresholds.challenge,
                                          "deny": rules.thresholds.deny},
                           "backtest": None}
    if path is not None and path.exists():
        report = json.loads(path.read_text())
        side = report.get("candidate") or report.get("live")
        out["backtest"] = {"source": str(path), "events": report.get("events"),
                           "rules_version": side["rules_version"],
                           "histogram": side["score_histogram"],
                           "rule_hit_rates": side["rule_hit_rates"],
                           # Backtest reports from before these figures existed lack them.
                           "customers_challenged_once": side.get("customers_challenged_once"),
                           "refused": side.get("refused")}
    return out


@router.get(
    "/v1/admin/ui/ruleset",
    response_class=PlainTextResponse,
    responses={422: {"model": InvalidRequest, "content": {"application/json": {}},
                     "description": "Thresholds that do not make a valid ruleset"}},
)
def export_ruleset(
    built: BuiltDep,
    challenge: Annotated[float, Query(gt=0, lt=1)],
    deny: Annotated[float, Query(gt=0, le=1)],
) -> Any:
    """The live ruleset file with the chosen thresholds, validated, ready to ship."""
    text = ruleset_text(built.rules.live if built.rules is not None else None)
    try:
        # The page's slider gives long fractions; four places are what a person reads.
        new = with_thresholds(text, challenge=round(challenge, 4), deny=round(deny, 4))
        parsed = parse_ruleset(new, source="exported")
    except RulesetError as exc:
        return error_response(422, str(exc), ["challenge", "deny"], **{
            "detail": [{"field": "challenge", "message": str(exc), "type": "value_error"}]})
    version = yaml.safe_load(new)["version"]
    return PlainTextResponse(new, headers={
        "Content-Disposition": f'attachment; filename="rules-{version}-'
                               f'{parsed.sha256[:8]}.yaml"'})


@page.get("/ui", response_class=HTMLResponse, include_in_schema=False)
def tuning_page() -> Any:
    """The tuning page: plain HTML and a small script, nothing from a CDN."""
    return resources.files("riskengine.api").joinpath("static", "tuning.html").read_text()
