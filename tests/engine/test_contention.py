"""One account's burst that the shared store cannot take: the failover answer for that
account, its attempts counted later, and the breaker kept shut for everyone else."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from features.profile import UserProfile
from riskengine.adapters.breaker import BreakerState, CircuitBreaker
from riskengine.adapters.outbox import Outbox
from riskengine.adapters.stores import Attempt, RedisStore, StoredDecision
from riskengine.adapters.stores import redis as redis_store
from riskengine.api.metrics import ServiceMetrics
from riskengine.core.wire import ScoreRequest
from tests.engine.conftest import HOME, T0, at
from tests.stores.test_contract import REDIS_URL, empty_redis

VICTIM = "+8613800138000"
OTHER = "+8613900139000"


def test_one_accounts_burst_fails_over_that_account_only(make_engine, tmp_path: Path,
                                                         caplog, monkeypatch) -> None:
    monkeypatch.setattr(redis_store, "TURN_WAIT_CALLS", 1)  # a turn is waited for 0.1 s
    victim_key = make_engine().user_keys("default", VICTIM)[0]
    inside, leave = threading.Event(), threading.Event()

    def holding(profile: UserProfile) -> UserProfile:
        inside.set()  # this write has the victim's turn, and keeps it until told
        leave.wait(30)
        return profile

    with empty_redis(), ThreadPoolExecutor(max_workers=1) as pool:
        store = RedisStore(REDIS_URL, timeout_s=0.1)
        breaker = CircuitBreaker(failure_threshold=5, reset_after_s=60.0)
        outbox = Outbox(tmp_path / "outbox.db")
        engine = make_engine(store=store, breaker=breaker, outbox=outbox)
        metrics = ServiceMetrics()
        before = T0.timestamp() - 60
        holder = pool.submit(
            store.record,
            StoredDecision(event_id="holder", tenant="default", user_key=victim_key,
                           ts=before, decision={}, features={}),
            Attempt(tenant="default", user_key=victim_key, ip_key="ip", asn=None,
                    device_key=None, ts=before, failed=False),
            holding)
        assert inside.wait(10)

        with caplog.at_level(logging.WARNING, logger="riskengine.decision"):
            for i in range(10):  # twice the breaker's threshold, all failed passwords
                scored = engine.score(ScoreRequest(**{
                    **HOME, "event_id": f"burst-{i}", "auth_result": "failure",
                    "timestamp": at(T0 + timedelta(seconds=i))}))
                metrics.record(scored, tenant="default")
                assert scored.body["failover"] is True
                assert [r["code"] for r in scored.body["reasons"]] == ["user_contended"]
        assert breaker.state is BreakerState.CLOSED
        assert sum("store_contended" in r.getMessage() for r in caplog.records) == 10

        # Everyone else is scored as usual meanwhile.
        other = engine.score(ScoreRequest(**{**HOME, "user_id": OTHER, "phone": OTHER,
                                             "timestamp": at(T0 + timedelta(minutes=1))}))
        assert other.body["failover"] is False and other.body["decision"] == "allow"

        # The metrics tell a contended account from a failing store.
        text = metrics.exposition()[0].decode()
        assert 'riskengine_failovers_total{reason="user_contended"} 10.0' in text
        assert "riskengine_store_errors_total 0.0" in text

        # A replay refused for the same burst does not open the breaker either ...
        assert len(outbox) == 10
        for _ in range(6):
            assert engine.drain_outbox() == 0
        assert breaker.state is BreakerState.CLOSED and len(outbox) == 10

        # ... and once the burst has passed, its attempts count: every failure, once.
        leave.set()
        holder.result(timeout=10)
        assert engine.drain_outbox() == 10
        profile = store.get_profile("default", victim_key)
        assert profile is not None and len(profile.failures) == 10
        outbox.close()
        store.close()
