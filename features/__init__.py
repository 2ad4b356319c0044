"""Login features: the one code path shared by the service, replays and notebooks.

Pure: no I/O beyond reading the bundled IP databases, no clock, no settings.
"""

from features.catalog import BY_NAME, FEATURES, MODEL_FEATURES, FeatureSpec
from features.event import AuthResult, EventType, LoginEvent, LoginMethod, NetworkType
from features.extract import FeatureVector, extract, ip_prefix
from features.ipintel import IpInfo, IpIntel
from features.profile import UserProfile, Velocity, learn, note_failure
from features.useragent import UserAgent, parse_user_agent

__all__ = [
    "BY_NAME",
    "FEATURES",
    "MODEL_FEATURES",
    "AuthResult",
    "EventType",
    "FeatureSpec",
    "FeatureVector",
    "IpInfo",
    "IpIntel",
    "LoginEvent",
    "LoginMethod",
    "NetworkType",
    "UserProfile",
    "Velocity",
    "extract",
    "ip_prefix",
    "learn",
    "note_failure",
    "parse_user_agent",
    "UserAgent",
]
