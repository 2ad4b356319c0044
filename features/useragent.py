"""What a user-agent string says: browser, OS and device, with a coarse device type."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

_TABLETS = ("ipad", "tablet", "tab ", "matepad", "pad ")
_MOBILE_OS = ("ios", "android", "harmonyos", "windows phone", "kaios")


@dataclass(frozen=True, slots=True)
class UserAgent:
    browser: str | None
    browser_version: str | None
    os: str | None
    os_version: str | None
    device_model: str | None
    device_type: str  # mobile | tablet | desktop | bot | unknown


def _join(*parts: str | None) -> str | None:
    return ".".join(p for p in parts if p) or None


@lru_cache(maxsize=8192)
def parse_user_agent(ua: str) -> UserAgent:
    """Parse with ``ua-parser`` (the uap-core regexes); cached, the same strings recur."""
    from ua_parser import parse

    r = parse(ua)
    browser = r.user_agent.family if r.user_agent else None
    os_name = r.os.family if r.os else None
    model = r.device.family if r.device and r.device.family not in ("Other", None) else None
    low = ua.lower()
    if (r.device and r.device.family == "Spider") or "bot" in (browser or "").lower():
        kind = "bot"
    elif any(t in low for t in _TABLETS):
        kind = "tablet"
    elif (os_name or "").lower() in _MOBILE_OS or "mobile" in low:
        kind = "mobile"
    elif os_name in ("Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "Fedora"):
        kind = "desktop"
    else:
        kind = "unknown"
    return UserAgent(
        browser=None if browser == "Other" else browser,
        browser_version=_join(r.user_agent.major, r.user_agent.minor) if r.user_agent else None,
        os=None if os_name == "Other" else os_name,
        os_version=_join(r.os.major, r.os.minor, r.os.patch) if r.os else None,
        device_model=None if model == "Spider" else model,
        device_type=kind,
    )
