"""Prometheus metrics of the scoring service, one registry per app.

Each app owns a ``CollectorRegistry`` rather than using the process-wide default one: tests
create many apps in one process, and each must count only its own decisions.

>>> from riskengine.service.scorer import Scored
>>> m = ServiceMetrics()
>>> m.record(Scored({"decision": "allow", "failover": False, "reasons": []}, 1.5),
...          tenant="acme")
>>> m.registry.get_sample_value("riskengine_decisions_total",
...     {"decision": "allow", "tenant": "acme", "failover": "false"})
1.0
"""

from __future__ import annotations

import threading

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

from riskengine.core.policy import FailoverReason
from riskengine.service.scorer import Scored

# A decision takes a few milliseconds; the buckets span 0.5 ms to 250 ms, the range where a
# change of latency matters to a login page, and past 250 ms only the +Inf bucket counts.
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)

# Callers choose the tenant string; past this many distinct tenants, further ones share one
# label value so that a caller cannot grow the number of series without bound.
MAX_TENANT_LABELS = 100
OTHER_TENANTS = "other"


class ServiceMetrics:
    """The service's counters and latency histogram, and their text exposition.

    - ``riskengine_decisions_total{decision,tenant,failover}``: decisions taken. An answer
      replayed for an ``event_id`` already scored is not a new decision and is not counted.
    - ``riskengine_score_latency_seconds``: time to answer ``/v1/score``, every answer.
    - ``riskengine_failovers_total{reason}``: failover answers by reason
      (``store_unavailable``, ``user_contended``, ``rule_error``, ``internal_error``).
    - ``riskengine_store_errors_total``: failover answers because the store failed or its
      circuit breaker was open (``store_unavailable``).
    """

    def __init__(self, *, max_tenant_labels: int = MAX_TENANT_LABELS) -> None:
        self.max_tenant_labels = max_tenant_labels
        self.registry = CollectorRegistry()
        self.decisions = Counter(
            "riskengine_decisions", "Decisions taken, by decision, tenant and failover flag",
            ["decision", "tenant", "failover"], registry=self.registry)
        self.latency = Histogram(
            "riskengine_score_latency_seconds", "Time to answer POST /v1/score, in seconds",
            buckets=LATENCY_BUCKETS_S, registry=self.registry)
        self.store_errors = Counter(
            "riskengine_store_errors", "Answers that failed over because the store failed",
            registry=self.registry)
        self.failovers = Counter(
            "riskengine_failovers", "Failover answers, by reason", ["reason"],
            registry=self.registry)
        for reason in FailoverReason:  # exported at 0 from the start, for rate() alerts
            self.failovers.labels(reason=reason.value)
        self._tenants: set[str] = set()
        self._lock = threading.Lock()

    def tenant_label(self, tenant: str) -> str:
        """``tenant`` itself for the first ``max_tenant_labels`` tenants seen, then "other"."""
        if tenant in self._tenants:
            return tenant
        with self._lock:
            if tenant in self._tenants:
                return tenant
            if len(self._tenants) >= self.max_tenant_labels:
                return OTHER_TENANTS
            self._tenants.add(tenant)
            return tenant

    def record(self, scored: Scored, *, tenant: str) -> None:
        """Count one answer of ``/v1/score``."""
        self.latency.observe(scored.latency_ms / 1000.0)
        if scored.replayed:
            return
        body = scored.body
        failover = bool(body.get("failover", False))
        self.decisions.labels(decision=str(body["decision"]), tenant=self.tenant_label(tenant),
                              failover="true" if failover else "false").inc()
        if failover:
            # A failover answer carries exactly one reason: why it failed over.
            reasons = body.get("reasons") or [{}]
            reason = str(reasons[0].get("code", "unknown"))
            self.failovers.labels(reason=reason).inc()
            if reason == FailoverReason.STORE_UNAVAILABLE:
                self.store_errors.inc()

    def exposition(self) -> tuple[bytes, str]:
        """The metrics in the Prometheus text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


__all__ = ["LATENCY_BUCKETS_S", "MAX_TENANT_LABELS", "ServiceMetrics"]
