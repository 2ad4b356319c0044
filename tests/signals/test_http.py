"""The HTTP adapter against a real local server: well, slow, down, failing, garbage."""

from __future__ import annotations

import time

import pytest

from riskengine.adapters.signals import UNLISTED, HttpPhoneRisk, Query, SignalServiceError
from riskengine.adapters.signals.files import parse_date

PHONE = "+8613800138000"


def q(phone: str = PHONE) -> Query:
    return Query(phone=phone, phone_key="pk", ip="123.120.5.9", ip_key="ik")


def test_answers_and_the_request_it_sends(service) -> None:
    service.answers[PHONE] = {"risk_level": "High", "recycled_at": "2026-10-01"}
    provider = HttpPhoneRisk(service.url + "?v=2", timeout_s=1.0,
                             auth_header="Authorization: Bearer s3cret")
    answer = provider.lookup(q())
    assert answer.phone_risk_level == "high"
    assert answer.phone_recycled_at == parse_date("2026-10-01")
    [request] = service.requests
    assert request["phone"] == PHONE
    assert request["path"] == "/v1/phone-risk?v=2"  # the number travels in the body only
    assert request["headers"]["Authorization"] == "Bearer s3cret"


def test_a_number_without_an_entry_is_unlisted(service) -> None:
    answer = HttpPhoneRisk(service.url, timeout_s=1.0).lookup(q())
    assert answer.phone_risk_level == UNLISTED
    assert answer.phone_recycled_at is None


@pytest.mark.parametrize("mode", ["error", "garbage", "not_object", "bad_level", "huge"])
def test_unusable_answers_are_errors_that_do_not_quote_the_body(service, mode) -> None:
    service.mode = mode
    with pytest.raises(SignalServiceError) as err:
        HttpPhoneRisk(service.url, timeout_s=1.0).lookup(q())
    assert PHONE not in str(err.value)


@pytest.mark.parametrize("mode", ["slow", "drip"])
def test_the_deadline_covers_the_whole_exchange(service, mode) -> None:
    """A slow answer and one trickled byte by byte (which resets per-read timeouts) are
    both cut off at the deadline."""
    service.mode = mode
    service.answers[PHONE] = {"risk_level": "high", "recycled_at": "2026-10-01T00:00:00Z"}
    provider = HttpPhoneRisk(service.url, timeout_s=0.3)
    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        provider.lookup(q())
    assert time.perf_counter() - started < 0.3 + 0.2


def test_a_service_that_is_down_fails_at_once(down_url) -> None:
    started = time.perf_counter()
    with pytest.raises(SignalServiceError):
        HttpPhoneRisk(down_url, timeout_s=1.0).lookup(q())
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(("url", "header"), [
    ("ftp://risk.example/x", None),
    ("http:///nohost", None),
    ("http://127.0.0.1/x", "no colon"),
    ("http://127.0.0.1/x", "X-Key: a\r\nX-Evil: b"),
])
def test_bad_configuration_is_refused_at_start(url, header) -> None:
    with pytest.raises(ValueError):
        HttpPhoneRisk(url, auth_header=header)
