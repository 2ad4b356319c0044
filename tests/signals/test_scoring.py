"""The scoring endpoint with external signals: whatever the providers do, it answers within
its deadline; the signals' rules hit and miss end to end."""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from tests.signals.conftest import make_client, stored_features, timed_post

BUDGET_S = 0.03
# What the test allows on top of the budget for the rest of the scoring path on a busy
# machine (the engine's own latency_ms), and for TestClient's round trip too (the caller's
# wall clock). CI saw one answer take 424 ms on a loaded machine late in the suite (a full
# garbage collection of the suite's heap, or the scheduler), so the slack is wide; both stay
# below the service's 1 s timeout and 2 s delay, so an answer that waited for the service
# would still fail.
SLACK_S = 0.6
WALL_SLACK_S = 0.9
PHONE = "+8613800138000"
BEIJING = "123.120.5.9"
SHANGHAI = "114.88.3.4"
SHANGHAI_HOME = "114.88.7.20"  # another /24 of the same provider, not on any list


def body(n: int, **fields: Any) -> dict[str, Any]:
    """A new customer's login, each with a number of its own unless ``phone`` is given."""
    return {"event_id": f"ev-{n}", "user_id": f"user{n}@example.cn", "ip": BEIJING,
            "phone": f"+86139{n:08d}", "timestamp": "2026-11-02T01:30:00Z", **fields}


def http_settings(url: str, **extra: Any) -> dict[str, Any]:
    return {"signals_http_url": url, "signals_http_timeout_s": 1.0,
            "signals_budget_s": BUDGET_S, **extra}


def assert_within_deadline(answers: list[tuple[dict[str, Any], float]]) -> None:
    for answer, elapsed in answers:
        assert answer["latency_ms"] < (BUDGET_S + SLACK_S) * 1000, answer["latency_ms"]
        assert elapsed < BUDGET_S + WALL_SLACK_S, elapsed
        assert answer["failover"] is False  # a signal outage is not a failover


@pytest.mark.parametrize("mode", ["slow", "drip", "error", "garbage", "not_object", "bad_level"])
def test_a_misbehaving_service_costs_at_most_the_budget_and_gives_unknown(
    tmp_path: Path, service, mode: str
) -> None:
    service.mode = mode
    with make_client(tmp_path, **http_settings(service.url)) as client:
        answers = [timed_post(client, body(n)) for n in range(8)]
        assert_within_deadline(answers)
        for n, (answer, _) in enumerate(answers):
            features = stored_features(client, f"ev-{n}")
            assert features["phone_risk_level"] == "unknown"
            assert features["phone_recycled_status"] == "unknown"
            assert features["phone_recycled_since_last_login"] is None
            assert features["phone_type"] == "mobile"  # offline facts do not depend on it
            assert answer["decision"] == "allow"  # an outage adds no risk
        [status] = client.app.state.built.engine.signals.status()["providers"]
        counts = status["counts"]
        # Fewer than 8 calls reached the service: the breaker or the cap in flight held
        # the rest back.
        assert counts.get("breaker_open", 0) + counts.get("busy", 0) > 0, counts


def test_a_service_that_is_down_costs_nothing_and_opens_the_breaker(
    tmp_path: Path, down_url: str
) -> None:
    with make_client(tmp_path, **http_settings(down_url)) as client:
        answers = [timed_post(client, body(n)) for n in range(8)]
        assert_within_deadline(answers)
        assert {stored_features(client, f"ev-{n}")["phone_risk_level"]
                for n in range(8)} == {"unknown"}
        [status] = client.app.state.built.engine.signals.status()["providers"]
        assert status["breaker"] == "open"
        assert status["counts"]["failed"] == 5 and status["counts"]["breaker_open"] == 3


def test_a_slow_answer_arrives_after_the_budget_and_serves_the_next_login(
    tmp_path: Path, service
) -> None:
    service.mode, service.delay_s = "slow", 0.15
    service.answers[PHONE] = {"risk_level": "high"}
    with make_client(tmp_path, **http_settings(service.url)) as client:
        first, elapsed = timed_post(client, body(1, event_type="registration", phone=PHONE))
        assert_within_deadline([(first, elapsed)])
        assert stored_features(client, "ev-1")["phone_risk_level"] == "unknown"
        # The lookup finishes in the background and fills the cache.
        [guard] = client.app.state.built.engine.signals.guards
        deadline = time.monotonic() + 5
        while not guard.stats["answered"]:
            assert time.monotonic() < deadline, guard.stats
            time.sleep(0.02)
        second, _ = timed_post(client, body(2, event_type="registration", phone=PHONE))
        assert stored_features(client, "ev-2")["phone_risk_level"] == "high"
        assert "high_risk_number_registration" in [r["code"] for r in second["reasons"]]
        assert len(service.requests) == 1


def test_a_well_service_answers_within_the_budget(tmp_path: Path, service) -> None:
    service.answers[PHONE] = {"risk_level": "high"}
    service.answers["+8613912345678"] = {"risk_level": "low"}
    with make_client(tmp_path, **http_settings(service.url, signals_budget_s=0.5)) as client:
        hit, _ = timed_post(client, body(1, event_type="registration", phone=PHONE))
        assert hit["decision"] == "challenge"
        assert hit["challenge"] != "sms_otp"  # a code to a farm's number proves nothing
        assert "high_risk_number_registration" in [r["code"] for r in hit["reasons"]]
        miss, _ = timed_post(client, body(2, event_type="registration", phone="+8613912345678"))
        assert miss["decision"] == "allow"
        assert stored_features(client, "ev-2")["phone_risk_level"] == "low"
        assert service.requests[0]["headers"].get("Authorization") is None


def test_latency_figures(tmp_path: Path, service, down_url: str) -> None:
    """Prints the measured figures (pytest -s): the scoring latency with each fault."""
    figures = {}
    for mode in ("ok", "slow", "garbage", "down"):
        service.mode = mode
        url = down_url if mode == "down" else service.url
        with make_client(tmp_path / mode, **http_settings(url)) as client:
            timed_post(client, body(0))  # warm-up
            latencies = [timed_post(client, body(n))[0]["latency_ms"] for n in range(1, 41)]
        figures[mode] = (statistics.median(latencies), max(latencies))
        assert max(latencies) < (BUDGET_S + SLACK_S) * 1000
    print("\nscoring latency_ms with the phone service (median / max of 40), budget "
          f"{BUDGET_S * 1000:.0f} ms: " + ", ".join(
              f"{m} {p50:.1f}/{top:.1f}" for m, (p50, top) in figures.items()))


# -- the file providers, end to end --------------------------------------------------------


@pytest.fixture
def lists(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "lists"
    folder.mkdir()
    files = {
        "signals_phone_risk_file": ("phone_risk.csv", "number,level\n+8617100000001,high\n"
                                    "+86171,medium\n"),
        "signals_recycled_file": ("recycled.csv", "number,recycled_on\n"
                                  "+8613800138000,2026-11-03\n+8613912345678,2020-01-01\n"),
        "signals_ip_reputation_file": ("ip_reputation.csv", "network,category\n"
                                       f"{SHANGHAI},botnet\n45.83.0.0/16,proxy\n"),
    }
    paths = {}
    for setting, (name, text) in files.items():
        paths[setting] = folder / name
        paths[setting].write_text(text)
    return paths


def codes(answer: dict[str, Any]) -> list[str]:
    return [r["code"] for r in answer["reasons"]]


def login(event_id: str, user: str, day: int, **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "user_id": user, "ip": BEIJING,
            "device": {"id": "490154203237518", "model": "HUAWEI Mate 60"},
            "network": {"type": "wifi", "ssid": "Zhang-Home"},
            "timestamp": f"2026-11-0{day}T01:30:00Z", **fields}


def test_recycled_number_then_sms_login_is_challenged_another_way(
    tmp_path: Path, lists: dict[str, Path]
) -> None:
    with make_client(tmp_path, **lists, signals_file_check_s=0) as client:
        # Logins on 1 and 2 November teach the profile; the carrier reassigned the number on
        # the 3rd; the SMS login of the 4th is the new holder's.
        for day in (1, 2):
            timed_post(client, login(f"a{day}", PHONE, day, phone=PHONE))
        sms, _ = timed_post(client, login("a4", PHONE, 4, phone=PHONE, login_method="sms_otp"))
        assert sms["decision"] == "challenge"
        assert sms["challenge"] not in (None, "sms_otp")
        assert {"recycled_number_sms_login", "recycled_number"} <= set(codes(sms))
        assert stored_features(client, "a4")["phone_recycled_since_last_login"] is True
        # Near miss: a number recycled long before this customer's history began.
        other = "+8613912345678"
        for day in (1, 2):
            timed_post(client, login(f"b{day}", other, day, phone=other))
        fine, _ = timed_post(client, login("b4", other, 4, phone=other, login_method="sms_otp"))
        assert fine["decision"] == "allow"
        assert not {"recycled_number_sms_login", "recycled_number"} & set(codes(fine))
        assert stored_features(client, "b4")["phone_recycled_status"] == "recycled"
        assert stored_features(client, "b4")["phone_recycled_since_last_login"] is False


def test_a_ported_number_on_a_new_phone_off_the_own_network_is_denied(
    tmp_path: Path, lists: dict[str, Path]
) -> None:
    # The carrier lists the number as changing hands on the 3rd (a port-out fraud looks
    # the same as a reassignment); on the 4th a phone the account never used signs in with
    # an SMS code, which goes to the number's new holder: no step-up helps, deny.
    with make_client(tmp_path, **lists, signals_file_check_s=0) as client:
        for day in (1, 2):
            timed_post(client, login(f"p{day}", PHONE, day, phone=PHONE))
        new_phone = {"id": "356938035643809", "model": "Xiaomi 14"}
        away, _ = timed_post(client, login("p4", PHONE, 4, phone=PHONE, login_method="sms_otp",
                                           device=new_phone, ip=SHANGHAI_HOME,
                                           network={"type": "cellular"}))
        assert away["decision"] == "deny" and away["challenge"] is None
        assert "ported_number_new_device_sms_login" in codes(away)
        # The same from the account's own address block (a customer who moved the number to
        # another carrier and bought a phone): asked for another channel's code instead.
        home, _ = timed_post(client, login("p5", PHONE, 4, phone=PHONE, login_method="sms_otp",
                                           device=new_phone))
        assert home["decision"] == "challenge" and home["challenge"] not in (None, "sms_otp")
        assert "ported_number_new_device_sms_login" not in codes(home)


def test_high_risk_number_at_registration(tmp_path: Path, lists: dict[str, Path]) -> None:
    with make_client(tmp_path, **lists) as client:
        hit, _ = timed_post(client, body(1, event_type="registration", phone="+8617100000001"))
        assert hit["decision"] == "challenge"
        assert "high_risk_number_registration" in codes(hit)
        # Near misses: a medium range at registration, the high number at a login.
        medium, _ = timed_post(client, body(2, event_type="registration",
                                            phone="+8617100000002"))
        assert medium["decision"] == "allow"
        assert stored_features(client, "ev-2")["phone_risk_level"] == "medium"
        later, _ = timed_post(client, body(3, phone="+8617100000001"))
        assert "high_risk_number_registration" not in codes(later)
        assert "high_risk_number" in codes(later)


def test_voip_number_at_registration(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:  # offline phone facts need no provider
        hit, _ = timed_post(client, body(1, event_type="registration", phone="+445612345678"))
        assert "voip_number_registration" in codes(hit)
        features = stored_features(client, "ev-1")
        assert features["phone_type"] == "voip" and features["phone_region"] == "GB"
        assert features["phone_ip_country_mismatch"] is True  # a GB number from Beijing
        miss, _ = timed_post(client, body(2, event_type="registration", phone="+447911123456"))
        assert "voip_number_registration" not in codes(miss)
        assert stored_features(client, "ev-2")["phone_type"] == "mobile"


def test_one_number_behind_many_accounts(tmp_path: Path) -> None:
    with make_client(tmp_path) as client:
        answers = [timed_post(client, body(n, event_type="registration", phone=PHONE))[0]
                   for n in range(6)]
        assert ["phone_many_accounts" in codes(a) for a in answers] == [False] * 4 + [True] * 2
        assert answers[4]["decision"] == "challenge" and answers[4]["challenge"] == "captcha"
        assert stored_features(client, "ev-5")["phone_accounts_30d"] == 6


def test_ip_reputation(tmp_path: Path, lists: dict[str, Path]) -> None:
    with make_client(tmp_path, **lists) as client:
        bot, _ = timed_post(client, body(1, ip=SHANGHAI))
        assert bot["decision"] == "challenge" and bot["challenge"] == "captcha"
        assert "ip_reputation_botnet" in codes(bot)
        near, _ = timed_post(client, body(2, ip="114.88.3.5"))
        assert not {"ip_reputation_botnet", "ip_reputation_proxy_abuse"} & set(codes(near))
        assert stored_features(client, "ev-2")["ip_reputation"] == "unlisted"
        proxy, _ = timed_post(client, body(3, ip="45.83.7.7"))
        assert "ip_reputation_proxy_abuse" in codes(proxy)


def test_a_refreshed_list_applies_without_a_restart(
    tmp_path: Path, lists: dict[str, Path]
) -> None:
    with make_client(tmp_path, **lists, signals_file_check_s=0) as client:
        first, _ = timed_post(client, body(1, ip="1.2.3.4"))
        assert "ip_reputation_botnet" not in codes(first)
        path = lists["signals_ip_reputation_file"]
        path.write_text(path.read_text() + "1.2.3.0/24,botnet\n")
        deadline, n = time.monotonic() + 5, 2
        while "ip_reputation_botnet" not in codes(timed_post(client, body(n, ip="1.2.3.4"))[0]):
            assert time.monotonic() < deadline, "the refreshed list never applied"
            n += 1
            time.sleep(0.02)


def test_an_invalid_list_stops_the_start(tmp_path: Path) -> None:
    bad = tmp_path / "ip.csv"
    bad.write_text("1.2.3.0/24,evil\n")
    with pytest.raises(ValueError, match="line 1"), \
            make_client(tmp_path, signals_ip_reputation_file=bad):
        pass


def test_no_raw_number_in_the_store_or_the_log(
    tmp_path: Path, service, lists: dict[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    service.mode = "garbage"  # its body quotes the number
    with make_client(tmp_path, **lists, **http_settings(service.url)) as client:
        for n in range(3):
            timed_post(client, body(n, phone="+8617100000001", event_type="registration"))
        engine = client.app.state.built.engine
        stored = engine.store.get_decision("default", engine.event_key("default", "ev-0"))
        assert "17100000001" not in repr(stored)
    assert "17100000001" not in caplog.text
    assert "signal_error" in caplog.text
    db = (tmp_path / "signals.db").read_bytes()
    assert b"17100000001" not in db
