"""The wire contract's checks, compiled into pydantic-core, against the per-field Python
validators they replaced (``tests/core/wire_reference.py``): over generated bodies, from
Python values and from JSON, the same bodies accepted as the same requests and the same
errors (type, field, message) for the ones refused; the same JSON schema."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import JsonSchemaMode

from riskengine.core import wire
from tests.core import wire_reference as ref


class _Kind(StrEnum):
    A = "wifi"


# Values any field may be sent: every JSON type, blanks of every kind of white space, control
# characters alone and inside text, a lone surrogate, and Python values no JSON body holds.
_ODD: list[Any] = [
    None, 0, 1, -1, 1.5, True, False, [], ["a"], {}, {"a": 1},
    "", " ", "  ", "\t", "\n", "\r\n", "\x00", "\x1c", "\x1f", "\x7f", "\x85", "\xa0", "\u2028",
    "\u3000", " \u3000 ", "a\nb", "a\x00", "\x1fx", "x\x7f", "é", "中", "\ud800", "a\ud800",
    "x" * 2000, "unknown", "0", "00000000", "<unknown ssid>", '"Home"', "  padded  ",
]
_PYTHON_ONLY: list[Any] = [b"bytes", _Kind.A, object(), (1, 2), {"a"}]

# Near misses of each field's valid values.
_FIELDS: dict[str, list[Any]] = {
    "event_id": ["e-1", "e" * 128, "e" * 129, " e ", "é-1"],
    "tenant": ["default", "acme", "acme corp", "t" * 64, "t" * 65, "Acme.Co_1-2"],
    "user_id": ["li.wei@example.cn", "+8613800138000", "u" * 256, "u" * 257, " u "],
    "timestamp": ["2026-11-02T09:30:00+08:00", "2026-08-31T08:00:03.262Z", "2026-11-02",
                  "2026-13-02T09:30:00+08:00", "1999-12-31T23:59:59Z", " 2026-11-02T09:30:00Z ",
                  "2100-12-31T23:00:00-02:00", "2026-11-02t09:30:00.1234567890z"],
    "event_type": ["login", "registration", "logout", "LOGIN", " login"],
    "auth_result": ["success", "failure", "ok", "SUCCESS"],
    "login_method": ["password", "sms_otp", "email_otp", "oauth", "face_id"],
    "ip": ["123.120.5.9", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", " 1.2.3.4 ",
           "2408:8207:1::1", "2408:8207:1:0:0:0:0:1", "::ffff:1.2.3.4", "2408:8207:1::1%eth0",
           "1.2.3.4/24", "1.2.3", "١.٢.٣.٤", "abc"],
    "user_agent": ["okhttp/4.12", "M" * 1024, "M" * 1025],
    "phone": ["+8613800138000", "8613800138000", " +8613800138000 ", "+86 138", "+861380013800012"],
}
_DEVICE: dict[str, list[Any]] = {
    "id": ["490154203237518", "490154203237519", "86AD0001-B259-E5E8-4573-65D172954F8F",
           "3f2a9c0e1b4d5a6f", "HONOR_1a2b3c4d5e", "<img src=x>", "0000000000000000"],
    "model": ["Xiaomi 14", "m" * 128, "m" * 129],
    "os_name": ["Android", "iOS"],
    "os_version": ["14", "17.6"],
    "bluetooth_mac": ["3c:22:fb:12:34:56", "3C-22-FB-12-34-56", "3c22fb123456",
                      "02:00:00:00:00:00", "zz:22:fb:12:34:56", "3c:22:fb:12:34"],
}
_NETWORK: dict[str, list[Any]] = {
    "type": ["wifi", "WIFI", " 4G ", "lte", "none", "wi\nfi", "ethernet"],
    "ssid": ["Home", '"HomeNet"', "<unknown ssid>", "s" * 64, "s" * 65],
}
_SIM: dict[str, list[Any]] = {
    "imsi": ["460001234567890", "4600012345678", "46000123456789x", "46000123456789\n",
             "４６０００１２３４５６７８９０", "000000000000000"],
    "iccid": ["89860012345678901234", "8986001234567890123F", "12860012345678901234",
              "00000000000000000000"],
}
_FEEDBACK: dict[str, list[Any]] = {
    "event_id": ["e-1", "e" * 129],
    "tenant": ["default", "acme corp"],
    "label": ["legit", "fraud", "FRAUD"],
    "source": ["challenge_passed", "challenge_failed", "user_report", "analyst", "admin"],
    "challenge": ["sms_otp", "email_otp", "captcha", "face"],
}


def _value(near: list[Any], *, python: bool) -> st.SearchStrategy[Any]:
    odd = _ODD + _PYTHON_ONLY if python else _ODD
    return st.one_of(*([st.sampled_from(near)] if near else []), st.sampled_from(odd),
                     st.text(max_size=20),
                     st.text(alphabet=" \t\n\x00\x1f\x85\u3000a0", max_size=6))


def _object(fields: dict[str, list[Any]], *, python: bool) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        name: _value(near, python=python) for name, near in fields.items()})


def _body(*, python: bool) -> st.SearchStrategy[dict[str, Any]]:
    """A body whose every field may be absent, a near miss of a valid value or an odd one
    (the required ones too: a refused body names every bad field, so all are checked)."""
    parts = {name: _value(near, python=python) for name, near in _FIELDS.items()}
    for name, fields in {"device": _DEVICE, "network": _NETWORK, "sim": _SIM}.items():
        parts[name] = st.one_of(_object(fields, python=python), _value([], python=python))
    return st.fixed_dictionaries({}, optional=parts)


def _outcome(model: type[BaseModel], data: Any, *, from_json: bool) -> Any:
    """What validating ``data`` gives: the request's values, or the errors as the API
    reports them (field, message, type) with the value refused and the error's cause."""
    try:
        made = model.model_validate_json(data) if from_json else model.model_validate(data)
    except ValidationError as e:
        # A string's value as refused (a str subclass's, a StrEnum's, is checked as the plain
        # string it is, and the error holds that; the API echoes no value anyway).
        return [(err["type"], err["loc"], err["msg"],
                 repr(str(err["input"]) if isinstance(err["input"], str) else err["input"]),
                 str(err.get("ctx", {}).get("error", ""))) for err in e.errors()]
    return made.model_dump()


def _same(new: type[BaseModel], old: type[BaseModel], data: Any) -> None:
    assert _outcome(new, data, from_json=False) == _outcome(old, data, from_json=False), data
    raw = json.dumps(data, default=repr)
    assert _outcome(new, raw, from_json=True) == _outcome(old, raw, from_json=True), raw


_EXAMPLES = settings(max_examples=400, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_EXAMPLES
@given(_body(python=False))
def test_a_json_body_is_judged_as_by_the_per_field_validators(body: dict[str, Any]) -> None:
    _same(wire.ScoreRequest, ref.ScoreRequest, body)


@_EXAMPLES
@given(_body(python=True))
def test_python_values_are_judged_as_by_the_per_field_validators(body: dict[str, Any]) -> None:
    new = _outcome(wire.ScoreRequest, body, from_json=False)
    assert new == _outcome(ref.ScoreRequest, body, from_json=False), body


@_EXAMPLES
@given(_object(_FEEDBACK, python=True))
def test_feedback_is_judged_as_by_the_per_field_validators(body: dict[str, Any]) -> None:
    assert _outcome(wire.FeedbackRequest, body, from_json=False) == \
        _outcome(ref.FeedbackRequest, body, from_json=False), body


@pytest.mark.parametrize(("new", "old"), [
    (wire.ScoreRequest, ref.ScoreRequest), (wire.Device, ref.Device),
    (wire.Network, ref.Network), (wire.Sim, ref.Sim), (wire.FeedbackRequest, ref.FeedbackRequest),
])
def test_every_field_with_every_odd_value_is_judged_as_before(
        new: type[BaseModel], old: type[BaseModel]) -> None:
    required = {"user_id": "u", "ip": "1.2.3.4"} if new is wire.ScoreRequest else \
        {"event_id": "e", "label": "fraud", "source": "analyst"} \
        if new is wire.FeedbackRequest else {}
    for name in new.model_fields:
        for value in _ODD:
            _same(new, old, {**required, name: value})
        for value in _PYTHON_ONLY:
            body = {**required, name: value}
            assert _outcome(new, body, from_json=False) == _outcome(old, body, from_json=False)
    for value in _ODD + _PYTHON_ONLY:  # not an object at all
        assert _outcome(new, value, from_json=False) == _outcome(old, value, from_json=False)


def test_a_blank_is_what_str_strip_removes_less_the_control_characters() -> None:
    spaces = {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()}
    controls = {c for c in spaces if wire._CONTROL.search(c)}
    for c in spaces:
        body = {"user_id": "u", "ip": "1.2.3.4", "phone": c * 3}
        got = _outcome(wire.ScoreRequest, body, from_json=False)
        if c in controls:
            assert got[0][0] == "value_error" and got[0][1] == ("phone",), repr(c)
        else:
            assert isinstance(got, dict) and got["phone"] is None, repr(c)
        assert got == _outcome(ref.ScoreRequest, body, from_json=False)


@pytest.mark.parametrize("model", [wire.ScoreRequest, wire.FeedbackRequest, wire.Device,
                                   wire.Network, wire.Sim])
@pytest.mark.parametrize("mode", ["validation", "serialization"])
def test_the_json_schema_is_the_per_field_validators_one(
        model: type[BaseModel], mode: JsonSchemaMode) -> None:
    old = getattr(ref, model.__name__)
    assert model.model_json_schema(mode=mode) == old.model_json_schema(mode=mode)


def _parsed(parse: Any, text: str) -> Any:
    try:
        when = parse(text)
    except ValueError as e:
        return str(e)
    return when, when.utcoffset(), when.tzinfo


_TWO = st.integers(0, 99).map("{:02d}".format)
_RFC3339_LIKE = st.tuples(
    st.sampled_from(["", " "]), st.integers(0, 9999).map("{:04d}".format), _TWO, _TWO,
    st.sampled_from(["T", "t", " ", "_"]), _TWO, _TWO, _TWO,
    st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=0, max_size=11).map(
        lambda d: "." + d)),
    st.one_of(st.sampled_from(["Z", "z", "", "+00:00", "-00:00", "+0800", "+08"]),
              st.tuples(st.sampled_from("+-"), _TWO, _TWO).map(lambda o: f"{o[0]}{o[1]}:{o[2]}")),
    st.sampled_from(["", " ", "\n"]),
).map(lambda p: f"{p[0]}{p[1]}-{p[2]}-{p[3]}{p[4]}{p[5]}:{p[6]}:{p[7]}{''.join(p[8:])}")


@settings(max_examples=2000, deadline=None, database=None)
@given(st.one_of(_RFC3339_LIKE, st.text(max_size=40)))
def test_timestamps_are_read_as_before(text: str) -> None:
    assert _parsed(wire.parse_timestamp, text) == _parsed(ref.parse_timestamp, text)


def test_timestamps_at_the_edges_are_read_as_before() -> None:
    for text in ["2000-01-01T00:00:00Z", "1999-12-31T23:59:59.999999999Z",
                 "2000-01-01T05:00:00+08:00", "2100-12-31T23:59:59.9999999z",
                 "2100-12-31T20:00:00-05:00", "2026-02-29T00:00:00Z", "2028-02-29t00:00:00z",
                 "2026-11-02 09:30:00.1234567+08:00", "0001-01-01T00:00:00+01:00",
                 "9999-12-31T23:59:59-01:00"]:
        assert _parsed(wire.parse_timestamp, text) == _parsed(ref.parse_timestamp, text), text


_OCTETS = st.lists(st.sampled_from(["0", "00", "01", "1", "9", "10", "99", "100", "199", "200",
                                    "249", "250", "255", "256", "300", "999", "", "٣", " 1"]),
                   min_size=2, max_size=6).map(".".join)


@settings(max_examples=500, deadline=None, database=None)
@given(st.one_of(st.ip_addresses().map(str), _OCTETS,
                 st.text(alphabet="0123456789.:af%٣ ", max_size=20)))
def test_addresses_are_read_as_before(text: str) -> None:
    body = {"user_id": "u", "ip": text}
    assert _outcome(wire.ScoreRequest, body, from_json=False) == \
        _outcome(ref.ScoreRequest, body, from_json=False)


def _mac(octets: bytes, seps: list[str], upper: list[bool]) -> str:
    text = [f"{o:02X}" if u else f"{o:02x}" for o, u in zip(octets, upper, strict=False)]
    return "".join(t + s for t, s in zip(text, [*seps, ""], strict=False))


# Addresses in every case and separator (one octet in the other case, one separator another),
# near misses (an octet of one or three digits, a separator doubled), the placeholders.
_OCTETS6 = st.binary(min_size=6, max_size=6)
_SEP = st.sampled_from([":", "-", "", "::", "."])
_MACS = st.one_of(
    st.builds(_mac, _OCTETS6, _SEP.map(lambda sep: [sep] * 5),
              st.sampled_from([[False] * 6, [True] * 6])),
    st.builds(lambda octets, sep, other, at, upper: _mac(
        octets, [other if i == at % 5 else sep for i in range(5)],
        [upper != (i == at) for i in range(6)]),
              _OCTETS6, _SEP, _SEP, st.integers(0, 5), st.booleans()),
    st.builds(_mac, st.binary(min_size=5, max_size=7), st.just([":"] * 6),
              st.just([False] * 7)),
    st.sampled_from(["02:00:00:00:00:00", "00:00:00:00:00:00", "00-00-00-00-00-00",
                     "3:22:fb:12:34:56", "3c:22:fb:12:34:567", " 3c:22:fb:12:34:56"]),
    st.text(alphabet="0123456789abcdef:- \u3000", max_size=18))


@settings(max_examples=1000, deadline=None, database=None)
@given(_MACS)
def test_bluetooth_addresses_are_read_as_before(text: str) -> None:
    body = {"bluetooth_mac": text}
    assert _outcome(wire.Device, body, from_json=False) == \
        _outcome(ref.Device, body, from_json=False)
