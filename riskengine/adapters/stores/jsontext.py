"""The stores' JSON: orjson, and ``json`` for what orjson refuses, so that exactly what
``json`` accepts is accepted.

orjson is several times faster than ``json`` on profiles and feature vectors. Unlike
``json``, it writes a NaN or an infinity as null; no stored value takes one (a profile's
location, the one float that could, is checked where it matters).
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from features.profile import UserProfile


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value`` (integers past 64 bits and keys that are not strings through
    ``json``, as orjson refuses them)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value).encode()


def dumps_text(value: Any) -> str:
    """``dumps`` as text."""
    return dumps(value).decode()


def loads(text: str | bytes) -> Any:
    """Parse JSON; ``json`` reads what orjson does not (NaN and Infinity literals, which
    values written by ``json.dumps`` may hold)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def profile_round_trips(profile: UserProfile) -> bool:
    """Parsing the profile's JSON gives back an equal profile. Every float in it is an
    event time or a count except the location, the one that could be NaN or infinite
    (which orjson writes as null)."""
    return all(v is None or math.isfinite(v) for v in (profile.last_lat, profile.last_lon))
