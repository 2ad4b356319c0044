"""External signals: phone-number facts and risk, recycled numbers, IP reputation.

The seam (``base``): a provider answers one kind of question; a ``Guard`` gives each
provider a deadline, a TTL cache, a circuit breaker and a cap on lookups in flight.
``Signals`` (``lookups``) starts the lookups of a login at the edge and collects them
within the scoring budget; what did not answer is ``"unknown"``. Built-in providers: files
an operator refreshes (``files``) and an HTTP adapter (``http``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from riskengine.adapters.breaker import CircuitBreaker
from riskengine.adapters.signals.base import (
    IP_CATEGORIES,
    RISK_LEVELS,
    UNKNOWN,
    UNLISTED,
    Answer,
    Guard,
    PhoneAccounts,
    Provider,
    Query,
    Signal,
)
from riskengine.adapters.signals.files import (
    IpReputationFile,
    PhoneRiskFile,
    RecycledNumbersFile,
    SignalFileError,
)
from riskengine.adapters.signals.http import HttpPhoneRisk, SignalServiceError
from riskengine.adapters.signals.lookups import Signals

if TYPE_CHECKING:
    from riskengine.service.settings import Settings


def from_settings(settings: Settings) -> Signals | None:
    """The signals the settings configure; None when there is nothing to do.

    Raises ``SignalFileError`` for a configured file that is missing or invalid, and
    ``ValueError`` for an unusable service URL or header: the service does not start.
    """
    providers: list[tuple[Provider, float]] = []
    files = ((PhoneRiskFile, settings.signals_phone_risk_file),
             (RecycledNumbersFile, settings.signals_recycled_file),
             (IpReputationFile, settings.signals_ip_reputation_file))
    for cls, path in files:
        if path is not None:
            providers.append((cls(path, check_interval_s=settings.signals_file_check_s), 0.0))
    if settings.signals_http_url:
        header = settings.signals_http_auth_header
        providers.append((HttpPhoneRisk(
            settings.signals_http_url, timeout_s=settings.signals_http_timeout_s,
            auth_header=header.get_secret_value() if header is not None else None,
        ), settings.signals_http_cache_ttl_s))
    counting = settings.signals_phone_accounts_max > 0
    if not providers and not settings.signals_phone_facts and not counting:
        return None
    guards = [
        Guard(provider, cache_ttl_s=ttl, max_in_flight=settings.signals_max_in_flight,
              breaker=CircuitBreaker(settings.signals_breaker_failures,
                                     settings.signals_breaker_reset_s))
        for provider, ttl in providers
    ]
    return Signals(
        guards,
        budget_s=settings.signals_budget_s,
        phone_facts=settings.signals_phone_facts,
        phone_accounts=PhoneAccounts(max_phones=settings.signals_phone_accounts_max)
        if counting else None,
    )


__all__ = [
    "IP_CATEGORIES",
    "RISK_LEVELS",
    "UNKNOWN",
    "UNLISTED",
    "Answer",
    "Guard",
    "HttpPhoneRisk",
    "IpReputationFile",
    "PhoneAccounts",
    "PhoneRiskFile",
    "Provider",
    "Query",
    "RecycledNumbersFile",
    "Signal",
    "SignalFileError",
    "SignalServiceError",
    "Signals",
    "from_settings",
]
