"""External signals: phone-number facts and risk, recycled numbers, IP reputation.

The seam (``base``): a provider answers one kind of question; a ``Guard`` gives each
provider a deadline, a TTL cache, a circuit breaker and a cap on lookups in flight.
``Signals`` (``lookups``) starts the lookups of a login at the edge and collects them
within the scoring budget; what did not answer is ``"unknown"``. Built-in providers: files
an operator refreshes (``files``) and an HTTP adapter (``http``).
"""

from __future__ import annotations

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
]
