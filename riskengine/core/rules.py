"""Rules as data: load a YAML ruleset, validate it, compile it once, evaluate it per event.

A rule has a stable ``id``, a ``name`` and ``description`` written for analysts, a condition
over named features (``features.catalog``) built from a small operator set (no eval), a
``score`` (positive adds risk, negative is trust that lowers it), and optionally an
``action`` floor, a preferred ``challenge`` and challenges to ``avoid``. Each evaluation
records every rule's outcome (hit, no hit, error) with the feature values it saw.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import operator
import re
import string
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from itertools import repeat
from pathlib import Path
from typing import Any, NamedTuple, TypeGuard

import yaml

from features.catalog import BY_NAME, FeatureSpec, Kind
from features.extract import FeatureVector

Value = Any
Predicate = Callable[[Mapping[str, Value]], bool]

_ID = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
SHIPPED_RULES = "default_rules.yaml"


class Action(StrEnum):
    ALLOW = "allow"
    CHALLENGE = "challenge"
    DENY = "deny"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Action.ALLOW: 0, Action.CHALLENGE: 1, Action.DENY: 2}


class Challenge(StrEnum):
    SMS_OTP = "sms_otp"
    EMAIL_OTP = "email_otp"
    CAPTCHA = "captcha"


class Outcome(StrEnum):
    HIT = "hit"
    NO_HIT = "no_hit"
    ERROR = "error"


class RulesetError(ValueError):
    """A ruleset file that cannot be used; the message names the rule, field and line."""


def _num(v: object) -> TypeGuard[int | float]:
    """A number, as rules compare them: an int or a float, never a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# -- the operators ----------------------------------------------------------------------


class Takes(StrEnum):
    """What an operator's ``value`` in the ruleset file must be."""

    ANY = "any"  # a value of the feature's kind (or a list of them)
    NUMBER = "number"  # an int or float, on an int or float feature
    LIST = "list"  # a list of values of the feature's kind
    NOTHING = "none"  # no value


LeafFactory = Callable[[str, Value], Predicate]
# (the expression reading the feature, the name holding the rule's value) -> the leaf's test
# as a Python expression, for the ruleset's kernel (``_kernel``).
LeafSource = Callable[[str, str], str]


@dataclass(frozen=True, slots=True)
class Operator:
    """A condition operator: its name, the value it takes, and how it tests a feature.

    ``make(feature, value)`` is the operator's one definition: it returns the leaf
    predicate that reads ``feature`` from the values and tests it against ``value``, in a
    single call per evaluation (a list ``value`` arrives as a frozenset). ``source`` writes
    the same test as an expression for the ruleset's kernel (``_kernel``), which the tests
    hold to ``make``'s predicate. ``feature_kind`` is the kind of feature the operator
    needs, when it needs one.
    """

    name: str
    takes: Takes
    make: LeafFactory
    source: LeafSource
    feature_kind: Kind | None = None


def _present(test: Callable[[Value, Value], bool]) -> LeafFactory:
    """``test(observed, value)``; false when the feature is missing (None)."""

    def make(feature: str, value: Value) -> Predicate:
        def leaf(v: Mapping[str, Value]) -> bool:
            o = v.get(feature)
            return o is not None and test(o, value)

        return leaf

    return make


def _numeric(compare: Callable[[Any, Any], bool]) -> LeafFactory:
    """``compare(observed, value)`` when the observed value is a number; false for None,
    for a bool (True is not 1 here) and for anything else."""

    def make(feature: str, value: Value) -> Predicate:
        def leaf(v: Mapping[str, Value]) -> bool:
            o = v.get(feature)
            # ``_num(o)`` written out: a numeric leaf runs on every event, in one call
            return o.__class__ is not bool and isinstance(o, (int, float)) \
                and compare(o, value)

        return leaf

    return make


def _is(constant: bool | None) -> LeafFactory:
    """The observed value is ``constant`` (True, False or None); the operator takes no value."""

    def make(feature: str, value: Value) -> Predicate:
        return lambda v: v.get(feature) is constant

    return make


def _not_null(feature: str, value: Value) -> Predicate:
    return lambda v: v.get(feature) is not None


# The kernel's leaves: ``_present``'s, ``_numeric``'s and ``_is``'s tests written as
# expressions. ``o`` is the kernel's one local for an observed value, assigned before use.
def _present_source(infix: str) -> LeafSource:
    return lambda got, value: f"((o := {got}) is not None and o {infix} {value})"


def _numeric_source(infix: str) -> LeafSource:
    return lambda got, value: (f"((o := {got}).__class__ is not bool and isinstance(o, "
                               f"(int, float)) and o {infix} {value})")


def _is_source(constant: bool | None) -> LeafSource:
    return lambda got, value: f"({got} is {constant!r})"


OPERATORS: Mapping[str, Operator] = {op.name: op for op in (
    Operator("eq", Takes.ANY, _present(operator.eq), _present_source("==")),
    Operator("ne", Takes.ANY, _present(operator.ne), _present_source("!=")),
    Operator("gt", Takes.NUMBER, _numeric(operator.gt), _numeric_source(">")),
    Operator("gte", Takes.NUMBER, _numeric(operator.ge), _numeric_source(">=")),
    Operator("lt", Takes.NUMBER, _numeric(operator.lt), _numeric_source("<")),
    Operator("lte", Takes.NUMBER, _numeric(operator.le), _numeric_source("<=")),
    Operator("in", Takes.LIST, _present(lambda o, e: o in e), _present_source("in")),
    Operator("not_in", Takes.LIST, _present(lambda o, e: o not in e),
             _present_source("not in")),
    Operator("is_true", Takes.NOTHING, _is(True), _is_source(True), feature_kind="bool"),
    Operator("is_false", Takes.NOTHING, _is(False), _is_source(False), feature_kind="bool"),
    Operator("is_null", Takes.NOTHING, _is(None), _is_source(None)),
    Operator("not_null", Takes.NOTHING, _not_null,
             lambda got, value: f"({got} is not None)"),
)}


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    name: str
    description: str
    score: float
    action: Action | None
    challenge: Challenge | None
    avoid: tuple[Challenge, ...]
    message: str
    features: tuple[str, ...]
    test: Predicate
    line: int
    # ``test`` as an expression over ``g`` (the values' ``get``) with ``{0}``, ``{1}``, ...
    # standing for the names of the values it compares with, and those values; None: the
    # kernel calls ``test``.
    source: tuple[str, tuple[Any, ...]] | None = field(default=None, repr=False)


class RuleResult(NamedTuple):
    """One rule's outcome on one event's feature ``values``.

    ``observed``, the values of the features the rule reads, is picked out when asked for:
    every evaluation makes a result per rule, and only the few that fire are explained. A
    NamedTuple rather than a frozen dataclass because ``evaluate`` builds one per rule per
    event, and a tuple is built in one C call (a frozen dataclass's ``__init__`` costs six
    times more).
    """

    rule: Rule
    outcome: Outcome
    values: Mapping[str, Value]
    error: str | None = None

    @property
    def observed(self) -> dict[str, Value]:
        get = self.values.get
        return {name: get(name) for name in self.rule.features}


@dataclass(frozen=True, slots=True)
class Thresholds:
    challenge: float
    deny: float


@dataclass(frozen=True, slots=True)
class OutcomeSettings:
    """The ruleset's ``outcome`` section: whether a ready outcome model
    (``models.outcome.OutcomeModel``) gives the score, and the thresholds on its
    probability of an attack. Off, or without a ready model, the hand-set combination
    scores against ``thresholds``. Rule actions are floors either way, but those of the
    ``advisory`` rules while a model trained on labelled logins (a ``base``) scores: their
    evidence is what that model was trained on, and it weighs it better than a floor."""

    enabled: bool = False
    thresholds: Thresholds = Thresholds(0.3, 0.97)
    advisory: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class ListEntry:
    """An allow- or deny-listed network: a CIDR range or an ASN, until it expires."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None
    asn: int | None
    expires: float | None
    note: str

    def matches(self, ip: str, asn: int | None, now: float) -> bool:
        if self.expires is not None and now >= self.expires:
            return False
        if self.asn is not None:
            return asn == self.asn
        addr = ipaddress.ip_address(ip)
        return self.network is not None and addr.version == self.network.version \
            and addr in self.network

    def describe(self) -> str:
        return f"AS{self.asn}" if self.asn is not None else str(self.network)


@dataclass(frozen=True, slots=True)
class Lists:
    allow: tuple[ListEntry, ...] = ()
    deny: tuple[ListEntry, ...] = ()

    def lookup(self, ip: str, asn: int | None, now: float) -> tuple[str | None, str | None]:
        """(allow entry, deny entry) matching this address, as text; None when none."""
        if not self.allow and not self.deny:  # the usual case: no lists configured
            return None, None

        def first(entries: tuple[ListEntry, ...]) -> str | None:
            hit = next((e for e in entries if e.matches(ip, asn, now)), None)
            return None if hit is None else hit.describe()

        return first(self.allow), first(self.deny)


@dataclass(frozen=True, slots=True)
class Ruleset:
    """A validated, frozen ruleset; ``version`` is the file's own, ``sha256`` its content's.

    ``tenants`` holds per-tenant variants (their own thresholds, rule overrides and lists);
    ``for_tenant`` picks the one that applies.
    """

    version: str
    sha256: str
    thresholds: Thresholds
    model_weight: float
    rules: tuple[Rule, ...]
    lists: Lists = Lists()
    outcome: OutcomeSettings = OutcomeSettings()
    tenants: Mapping[str, Ruleset] = field(default_factory=dict)
    source: str = ""
    # Every rule's outcome in one call (``_kernel``), made from ``rules`` here.
    kernel: Kernel = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", _kernel(self.rules))

    @property
    def label(self) -> str:
        """What decisions record: version and a short content hash."""
        return f"{self.version}+{self.sha256[:12]}"

    def for_tenant(self, tenant: str) -> Ruleset:
        return self.tenants.get(tenant, self)

    def evaluate(self, values: Mapping[str, Value]) -> list[RuleResult]:
        """Every rule's outcome on ``values``; a rule that raises is an error, not a crash.

        The results refer to ``values`` (not a copy): it must not change while they are used.
        """
        # The compiled tests only call ``.get``: hand them the feature vector's own dict,
        # whose ``get`` is a C call, rather than the Mapping wrapper around it.
        data = values.mapping if isinstance(values, FeatureVector) else values
        rules = self.rules
        try:
            # Each result built from its four fields in C (``tuple.__new__``), without the
            # NamedTuple's Python-level ``__new__``.
            return list(map(_new_result, repeat(RuleResult),
                            zip(rules, self.kernel(data), repeat(data), repeat(None))))
        except Exception:  # a rule bug must not take the scoring path down
            return [_checked(rule, data) for rule in rules]


_new_result = tuple.__new__
# Every rule's outcome on the values, in the rules' order.
Kernel = Callable[[Mapping[str, Value]], tuple[Outcome, ...]]


def _kernel(rules: tuple[Rule, ...]) -> Kernel:
    """The rules' tests as one function: every rule's outcome in one call.

    Each rule's ``test`` is a tree of closures (~110 Python calls a login for the shipped
    rules); here each rule's condition is one expression (its ``source``, made by the
    operators' ``source`` from the validated condition) and all of them one tuple, so an
    evaluation is one call. The closures stay the definition: a rule without a source is
    called as it is, an exception is left to ``evaluate``'s rule-by-rule reference, and the
    tests hold the two to the same outcomes. Only the operators' fixed expressions and
    the catalog's feature names (``repr``) are written into the text; the rules' values
    are passed in as arguments, never written.
    """
    values: list[Any] = []

    def names(count: int) -> list[str]:
        return [f"c{len(values) + i}" for i in range(count)]

    tests = []
    for rule in rules:
        if rule.source is None:
            [name] = names(1)
            values.append(rule.test)
            tests.append(f"H if {name}(v) else N")
        else:
            text, constants = rule.source
            refs = names(len(constants))
            values.extend(constants)
            tests.append(f"H if {text.format(*refs)} else N")
    params = "".join(f", c{i}" for i in range(len(values)))
    outcomes = "".join(f"\n        {t}," for t in tests)
    code = (f"def make(H, N{params}):\n"
            f"    def outcomes(v):\n"
            f"        g = v.get\n"
            f"        return ({outcomes}\n        )\n"
            f"    return outcomes\n")
    scope: dict[str, Any] = {}
    exec(compile(code, "<ruleset kernel>", "exec"), scope)  # noqa: S102 - see the docstring
    kernel: Kernel = scope["make"](Outcome.HIT, Outcome.NO_HIT, *values)
    return kernel


def _checked(rule: Rule, data: Mapping[str, Value]) -> RuleResult:
    """One rule's result, with an exception it raises as the ``error`` outcome."""
    try:
        hit = rule.test(data)
    except Exception as exc:
        return RuleResult(rule, Outcome.ERROR, data, repr(exc))
    return RuleResult(rule, Outcome.HIT if hit else Outcome.NO_HIT, data)


# -- loading and validation -------------------------------------------------------------


def shipped_ruleset_text() -> str:
    """The text of the ruleset shipped with the package."""
    return resources.files("riskengine.data").joinpath(SHIPPED_RULES).read_text("utf-8")


def load_ruleset(path: str | Path | None = None) -> Ruleset:
    """Load and validate a ruleset file (the shipped default when ``path`` is None)."""
    if path is None:
        text = shipped_ruleset_text()
        source = f"<shipped {SHIPPED_RULES}>"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise RulesetError(f"cannot read ruleset {path}: {exc.strerror}") from exc
        source = str(path)
    return parse_ruleset(text, source=source)


def parse_ruleset(text: str, *, source: str = "<string>") -> Ruleset:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesetError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesetError(f"{source}: a ruleset is a mapping with version, thresholds, rules")
    lines = _rule_lines(root)

    def fail(msg: str) -> RulesetError:
        return RulesetError(f"{source}: {msg}")

    version = data.get("version")
    if not (isinstance(version, (str, int, float)) and str(version) != ""):
        raise fail("'version' is required")
    th = data.get("thresholds") or {}
    if not isinstance(th, dict):
        raise fail("'thresholds' must be a mapping with challenge and deny")
    challenge, deny = th.get("challenge"), th.get("deny")
    if not (_num(challenge) and _num(deny) and 0 < challenge < deny <= 1):
        raise fail("thresholds: need 0 < challenge < deny <= 1")
    model = data.get("model") or {}
    weight = model.get("weight", 0.0) if isinstance(model, dict) else None
    if not (_num(weight) and 0 <= weight <= 1):
        raise fail("model.weight must be a number in [0, 1]")
    raw_rules = data.get("rules")
    if not (isinstance(raw_rules, list) and raw_rules):
        raise fail("'rules' must be a non-empty list")

    rules: list[Rule] = []
    seen: set[str] = set()
    for index, raw in enumerate(raw_rules):
        line = lines[index] if index < len(lines) else 0
        rule = _parse_rule(raw, index=index, line=line, source=source)
        if rule.id in seen:
            raise RulesetError(f"{source}: rule '{rule.id}' (line {line}): duplicate id")
        seen.add(rule.id)
        if raw.get("enabled", True):
            rules.append(rule)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    base = Ruleset(
        version=str(version),
        sha256=digest,
        thresholds=Thresholds(float(challenge), float(deny)),
        model_weight=float(weight),
        rules=tuple(rules),
        lists=_parse_lists(data.get("lists"), where=f"{source}: lists"),
        outcome=_parse_outcome(data.get("outcome"), where=f"{source}: outcome",
                               rule_ids=seen),
        source=source,
    )
    tenants = data.get("tenants") or {}
    if not isinstance(tenants, dict):
        raise fail("'tenants' must map tenant names to overrides")
    return replace(base, tenants={
        str(name): _tenant_variant(base, name, spec, source=source)
        for name, spec in tenants.items()
    })


def _parse_outcome(raw: Any, *, where: str, rule_ids: set[str]) -> OutcomeSettings:
    """``outcome: {enabled: bool, thresholds: {challenge, deny}, advisory: [rule ids]}``;
    absent: the defaults."""
    if raw is None:
        return OutcomeSettings()
    if not isinstance(raw, dict) or set(raw) - {"enabled", "thresholds", "advisory"}:
        raise RulesetError(f"{where}: a mapping with 'enabled', 'thresholds' and 'advisory'")
    advisory = raw.get("advisory") or []
    if not isinstance(advisory, list) or not all(isinstance(a, str) for a in advisory):
        raise RulesetError(f"{where}, field 'advisory': a list of rule ids")
    unknown = sorted(set(advisory) - rule_ids)
    if unknown:
        raise RulesetError(f"{where}, field 'advisory': no rule {', '.join(unknown)}")
    enabled = raw.get("enabled", OutcomeSettings().enabled)
    if not isinstance(enabled, bool):
        raise RulesetError(f"{where}, field 'enabled': true or false")
    default = OutcomeSettings().thresholds
    th = raw.get("thresholds") or {}
    if not isinstance(th, dict) or set(th) - {"challenge", "deny"}:
        raise RulesetError(f"{where}, field 'thresholds': a mapping with challenge and deny")
    challenge, deny = th.get("challenge", default.challenge), th.get("deny", default.deny)
    if not (_num(challenge) and _num(deny) and 0 < challenge < deny <= 1):
        raise RulesetError(f"{where}, field 'thresholds': need 0 < challenge < deny <= 1")
    return OutcomeSettings(enabled, Thresholds(float(challenge), float(deny)),
                           frozenset(advisory))


_OVERRIDABLE = {"enabled", "score", "action"}


def _tenant_variant(base: Ruleset, name: str, spec: Any, *, source: str) -> Ruleset:
    """The ruleset as tenant ``name`` sees it: its thresholds, rule overrides and lists."""
    where = f"{source}: tenant '{name}'"
    if not isinstance(spec, dict) or set(spec) - {"thresholds", "rules", "lists"}:
        raise RulesetError(f"{where}: allowed keys are thresholds, rules, lists")
    th = spec.get("thresholds") or {}
    challenge = th.get("challenge", base.thresholds.challenge)
    deny = th.get("deny", base.thresholds.deny)
    if not (_num(challenge) and _num(deny) and 0 < challenge < deny <= 1):
        raise RulesetError(f"{where}, field 'thresholds': need 0 < challenge < deny <= 1")
    by_id = {r.id: r for r in base.rules}
    rules = dict(by_id)
    for rid, override in (spec.get("rules") or {}).items():
        if rid not in by_id:
            raise RulesetError(f"{where}: rule '{rid}' is not in the ruleset")
        if not isinstance(override, dict) or set(override) - _OVERRIDABLE:
            raise RulesetError(f"{where}, rule '{rid}': only {sorted(_OVERRIDABLE)} can be "
                               "overridden")
        rule = by_id[rid]
        if override.get("enabled") is False:
            del rules[rid]
            continue
        score = override.get("score", rule.score)
        if not _num(score) or not -1 < score < 1:
            raise RulesetError(f"{where}, rule '{rid}', field 'score': a number in (-1, 1)")
        action = override.get("action", rule.action.value if rule.action else None)
        if action is not None and action not in Action.__members__.values():
            raise RulesetError(f"{where}, rule '{rid}', field 'action': "
                               f"one of {[a.value for a in Action]}")
        rules[rid] = replace(rule, score=float(score),
                             action=Action(action) if action else None)
    lists = base.lists
    if "lists" in spec:
        lists = _parse_lists(spec["lists"], where=f"{where}, lists")
    return replace(base, thresholds=Thresholds(float(challenge), float(deny)),
                   rules=tuple(rules[r.id] for r in base.rules if r.id in rules),
                   lists=lists, tenants={})


_NUMBER = r"[-+0-9.eE]+"


def with_thresholds(text: str, *, challenge: float, deny: float,
                    version: str | None = None) -> str:
    """The ruleset file ``text`` with other thresholds (and another version, if given),
    every comment and rule kept as it was: what staff ship after tuning. The result is
    checked with ``parse_ruleset``; a ``RulesetError`` (a ``ValueError``) says why not."""
    out, in_block, done = [], False, set()
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        top = line[:1] not in (" ", "\t", "#", "\n", "\r", "")
        if top:
            in_block = False
        if top and version is not None and re.match(r"version\s*:", line):
            line = f"version: {json.dumps(version)}\n"
            done.add("version")
        elif top and re.match(r"thresholds\s*:", line):
            rest = line.split(":", 1)[1].strip()
            if rest.startswith("{"):  # flow style on one line
                line = f"thresholds: {{challenge: {challenge}, deny: {deny}}}\n"
                done.update({"challenge", "deny"})
            else:
                in_block = True
        elif in_block and stripped and not stripped.startswith("#"):
            for name, value in (("challenge", challenge), ("deny", deny)):
                m = re.match(rf"^(\s+{name}\s*:\s*){_NUMBER}(.*)$", line.rstrip("\r\n"))
                if m:
                    line = f"{m.group(1)}{value}{m.group(2)}\n"
                    done.add(name)
        out.append(line)
    missing = {"challenge", "deny", *([] if version is None else ["version"])} - done
    if missing:
        raise RulesetError(f"could not find {sorted(missing)} at the top of the ruleset")
    result = "".join(out)
    parsed = parse_ruleset(result, source="<ruleset with new thresholds>")
    if (parsed.thresholds.challenge, parsed.thresholds.deny) != (challenge, deny):
        raise RulesetError("the thresholds did not end up in the ruleset")
    return result


def _parse_lists(raw: Any, *, where: str) -> Lists:
    if raw is None:
        return Lists()
    if not isinstance(raw, dict) or set(raw) - {"allow", "deny"}:
        raise RulesetError(f"{where}: a mapping with 'allow' and/or 'deny' lists")
    out = {}
    for kind in ("allow", "deny"):
        entries = []
        for i, item in enumerate(raw.get(kind) or []):
            at = f"{where}.{kind}[{i}]"
            if not isinstance(item, dict) or set(item) - {"cidr", "asn", "expires", "note"} or \
                    ("cidr" in item) == ("asn" in item):
                raise RulesetError(f"{at}: one of 'cidr' or 'asn', optional 'expires', 'note'")
            network = None
            if "cidr" in item:
                try:
                    network = ipaddress.ip_network(str(item["cidr"]), strict=False)
                except ValueError:
                    raise RulesetError(f"{at}, field 'cidr': not a CIDR range") from None
            asn = item.get("asn")
            if asn is not None and (not isinstance(asn, int) or isinstance(asn, bool)):
                raise RulesetError(f"{at}, field 'asn': an AS number")
            expires = item.get("expires")
            if expires is not None:
                try:
                    from riskengine.core.wire import parse_timestamp

                    expires = parse_timestamp(str(expires)).timestamp()
                except ValueError:
                    raise RulesetError(f"{at}, field 'expires': an RFC 3339 time") from None
            entries.append(ListEntry(network, asn, expires, str(item.get("note", ""))))
        out[kind] = tuple(entries)
    return Lists(**out)


def _rule_lines(root: yaml.Node | None) -> list[int]:
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "rules" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def _parse_rule(raw: Any, *, index: int, line: int, source: str) -> Rule:
    rid = raw.get("id") if isinstance(raw, dict) else None
    where = f"{source}: rule '{rid or f'#{index + 1}'}' (line {line})"

    def fail(field: str, msg: str) -> RulesetError:
        return RulesetError(f"{where}, field '{field}': {msg}")

    if not isinstance(raw, dict):
        raise fail("-", "a rule is a mapping")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise fail("id", "must be lower_snake_case, 3-64 characters")
    known_fields = {"id", "name", "description", "when", "score", "action", "challenge",
                    "avoid", "message", "enabled"}
    extra = set(raw) - known_fields
    if extra:
        raise fail(sorted(extra)[0], "unknown field")
    for name in ("name", "description"):
        if not isinstance(raw.get(name), str) or not raw[name].strip():
            raise fail(name, "is required text")
    score = raw.get("score", 0.0)
    if not _num(score) or not -1 < score < 1:
        raise fail("score", "must be a number in (-1, 1)")
    action = raw.get("action")
    if action is not None and action not in Action.__members__.values():
        raise fail("action", f"must be one of {[a.value for a in Action]}")
    if action is None and score == 0:
        raise fail("score", "a rule needs a non-zero score or an action")
    challenge = raw.get("challenge")
    if challenge is not None and challenge not in Challenge.__members__.values():
        raise fail("challenge", f"must be one of {[c.value for c in Challenge]}")
    avoid = raw.get("avoid") or []
    if not isinstance(avoid, list) or any(a not in Challenge.__members__.values() for a in avoid):
        raise fail("avoid", f"must be a list of {[c.value for c in Challenge]}")
    if "when" not in raw:
        raise fail("when", "is required")
    used: list[str] = []
    constants: list[Any] = []
    try:
        test, text = _compile(raw["when"], used, constants)
    except RulesetError as exc:
        raise fail("when", str(exc)) from None
    message = raw.get("message") or raw["name"]
    if not isinstance(message, str):
        raise fail("message", "must be text")
    for _, feature, spec, _ in string.Formatter().parse(message):
        if feature is not None and feature not in BY_NAME:
            raise fail("message", f"unknown feature '{feature}' in the template")
        if feature and feature not in used:
            used.append(feature)
        if spec and not re.fullmatch(r"[,.]?\.?\d*[dfg%]?", spec):
            raise fail("message", f"format '{spec}' not allowed")
    return Rule(
        id=rid,
        name=raw["name"].strip(),
        description=" ".join(raw["description"].split()),
        score=float(score),
        action=Action(action) if action else None,
        challenge=Challenge(challenge) if challenge else None,
        avoid=tuple(Challenge(a) for a in avoid),
        message=message,
        features=tuple(used),
        test=test,
        line=line,
        source=(text, tuple(constants)),
    )


def _compile(node: Any, used: list[str], constants: list[Any]) -> tuple[Predicate, str]:
    """Turn a condition tree into one closure, checking names, operators and value types;
    and into the same test as an expression for the kernel (``Rule.source``), whose
    values are appended to ``constants``."""
    if not isinstance(node, dict) or len(node) != 1 and "feature" not in node:
        raise RulesetError("a condition is {all: [...]}, {any: [...]}, {not: ...} "
                           "or {feature, op, value}")
    if "all" in node or "any" in node:
        key = "all" if "all" in node else "any"
        items = node[key]
        if not isinstance(items, list) or not items:
            raise RulesetError(f"'{key}' needs a non-empty list")
        compiled = [_compile(item, used, constants) for item in items]
        parts = tuple(test for test, _ in compiled)
        text = f" {'and' if key == 'all' else 'or'} ".join(t for _, t in compiled)
        return (_all(parts) if key == "all" else _any(parts)), f"({text})"
    if "not" in node:
        inner, inner_text = _compile(node["not"], used, constants)
        return (lambda v: not inner(v)), f"(not {inner_text})"
    name, op = node.get("feature"), node.get("op")
    extra = set(node) - {"feature", "op", "value"}
    if extra:
        raise RulesetError(f"unknown key '{sorted(extra)[0]}' in a condition")
    if not isinstance(name, str) or name not in BY_NAME:
        raise RulesetError(f"unknown feature '{name}'")
    if not isinstance(op, str) or op not in OPERATORS:  # a list is not hashable
        raise RulesetError(f"unknown operator '{op}' (known: {', '.join(OPERATORS)})")
    definition = OPERATORS[op]
    expected = node.get("value")
    _check_value(BY_NAME[name], definition, expected, has_value="value" in node)
    if isinstance(expected, list):
        expected = frozenset(expected)
    if name not in used:
        used.append(name)
    constants.append(expected)
    return (definition.make(name, expected),
            definition.source(f"g({name!r})", f"{{{len(constants) - 1}}}"))


def _all(parts: tuple[Predicate, ...]) -> Predicate:
    """``all`` of the parts, short-circuiting, without a generator per call."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda v: bool(a(v) and b(v))

    def test(v: Mapping[str, Value]) -> bool:
        for p in parts:  # noqa: SIM110 - no generator per call
            if not p(v):
                return False
        return True

    return test


def _any(parts: tuple[Predicate, ...]) -> Predicate:
    """``any`` of the parts, short-circuiting, without a generator per call."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        a, b = parts
        return lambda v: bool(a(v) or b(v))

    def test(v: Mapping[str, Value]) -> bool:
        for p in parts:  # noqa: SIM110 - no generator per call
            if p(v):
                return True
        return False

    return test


def _check_value(spec: FeatureSpec, definition: Operator, value: Any, *,
                 has_value: bool) -> None:
    op, takes, feature_kind = definition.name, definition.takes, definition.feature_kind
    if takes is Takes.NOTHING and has_value:
        raise RulesetError(f"operator '{op}' takes no value")
    if takes is not Takes.NOTHING and not has_value:
        raise RulesetError(f"operator '{op}' needs a value")
    if feature_kind is not None and spec.kind != feature_kind:
        raise RulesetError(f"'{op}' needs a {feature_kind} feature, '{spec.name}' is {spec.kind}")
    if takes is Takes.NOTHING:
        return
    if takes is Takes.NUMBER and (spec.kind not in ("int", "float") or not _num(value)):
        raise RulesetError(f"'{op}' compares numbers: '{spec.name}' is {spec.kind}, "
                           f"value {value!r}")
    if takes is Takes.LIST and not isinstance(value, list):
        raise RulesetError(f"'{op}' needs a list value")
    items: Iterable[Any] = value if isinstance(value, list) else [value]
    for item in items:
        ok = {
            "bool": isinstance(item, bool),
            "int": _num(item),
            "float": _num(item),
            "str": isinstance(item, str),
        }[spec.kind]
        if not ok:
            raise RulesetError(f"value {item!r} does not fit {spec.kind} feature '{spec.name}'")


def render_message(rule: Rule, observed: Mapping[str, Value]) -> str:
    """The rule's message with the observed values filled in ('?' for missing ones)."""
    fixed = _fixed_text(rule.message)
    if fixed is not None:
        return fixed
    try:
        return rule.message.format_map(_Missing(observed))
    except (ValueError, TypeError):
        return rule.name


@lru_cache(maxsize=1024)
def _fixed_text(message: str) -> str | None:
    """The message as rendered when it has no fields to fill in (most trust and device
    rules), else None: it is then the same for every event."""
    try:
        if any(name is not None for _, name, _, _ in string.Formatter().parse(message)):
            return None
        return message.format_map({})
    except (ValueError, TypeError):
        return None


class _Missing(dict[str, Any]):
    def __init__(self, values: Mapping[str, Value]) -> None:
        super().__init__({k: v for k, v in values.items() if v is not None})

    def __missing__(self, key: str) -> str:
        return "?"
