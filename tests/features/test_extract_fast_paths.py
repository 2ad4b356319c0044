"""The extractor's fast paths against the plain definitions they stand in for."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from hypothesis import given
from hypothesis import strategies as st

from features.extract import FeatureVector, ip_prefix, ip_prefix_reference


def _prefix_or_error(fn: Callable[[str], str], text: str) -> str:
    try:
        return fn(text)
    except ValueError:
        return "ValueError"


@given(st.ip_addresses())
def test_ip_prefix_of_a_canonical_address_is_the_reference(addr: ipaddress._BaseAddress) -> None:
    text = str(addr)
    assert ip_prefix(text) == ip_prefix_reference(text)


# Near misses of the canonical IPv4 form: leading zeros, octets above 255, too few or too many
# octets, other digits than ASCII ones, spaces, IPv6 and IPv4-mapped forms.
_NEAR = st.text(alphabet="0123456789.:af%٣ ", min_size=0, max_size=20)
_OCTETS = st.lists(st.sampled_from(["0", "00", "01", "1", "9", "10", "99", "100", "199", "200",
                                    "249", "250", "255", "256", "300", "999", "0255", "", "٣"]),
                   min_size=2, max_size=6).map(".".join)


@given(st.one_of(_NEAR, _OCTETS))
def test_ip_prefix_of_any_text_is_the_reference(text: str) -> None:
    assert _prefix_or_error(ip_prefix, text) == _prefix_or_error(ip_prefix_reference, text)


def test_ip_prefix_cuts_a_canonical_ipv4_at_its_last_octet() -> None:
    assert ip_prefix("123.120.5.9") == "123.120.5.0/24"
    assert ip_prefix("0.0.0.0") == "0.0.0.0/24"
    assert _prefix_or_error(ip_prefix, "123.120.05.9") == "ValueError"


def test_to_dict_is_an_independent_copy_of_the_values() -> None:
    values = {"device_known": True, "geo_velocity_kmh": 12.5, "ip_country": None}
    fv = FeatureVector(values)

    out = fv.to_dict()
    out["device_known"] = False

    assert out is not values and type(out) is dict
    assert fv.to_dict() == values == dict(fv)
    assert list(fv.to_dict()) == list(values)
