"""The IP lookups' reading of an address against ``ipaddress``, the definition."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from features.ipintel import _V4_STARTS, _address, _address_reference

Read = tuple[int, int, str, bool] | str


def _read(fn: Callable[[str], tuple[int, int, str, bool]], text: str) -> Read:
    try:
        return fn(text)
    except ValueError:
        return "ValueError"


@settings(max_examples=2000)
@given(st.ip_addresses())
def test_an_address_reads_as_the_reference(addr: ipaddress._BaseAddress) -> None:
    text = str(addr)
    assert _address(text) == _address_reference(text)


def test_every_boundary_of_the_special_networks_reads_as_the_reference() -> None:
    """Both sides of each cut of the table: where a wrong table would show first."""
    for start in _V4_STARTS:
        for value in (start - 1, start, start + 1):
            if 0 <= value < 2 ** 32:
                text = str(ipaddress.IPv4Address(value))
                assert _address(text) == _address_reference(text), text
    assert not _address("100.64.0.1")[3] and _address("100.63.255.255")[3]
    assert not _address("255.255.255.255")[3] and not _address("10.0.0.1")[3]


# Near misses of the canonical IPv4 form, as tests/features/test_extract_fast_paths.py.
_NEAR = st.text(alphabet="0123456789.:af%٣ ", min_size=0, max_size=20)
_OCTETS = st.lists(st.sampled_from(["0", "00", "01", "1", "9", "10", "99", "100", "199", "200",
                                    "249", "250", "255", "256", "300", "999", "0255", "", "٣"]),
                   min_size=2, max_size=6).map(".".join)


@given(st.one_of(_NEAR, _OCTETS))
def test_any_text_reads_as_the_reference(text: str) -> None:
    assert _read(_address, text) == _read(_address_reference, text)
