"""What a phone number says about itself, from ``phonenumbers``' offline metadata.

Pure functions over an E.164 number (or over values already derived from one): no lookup
leaves the process. The engine computes these at the edge, where the raw number still
exists, and passes on only the derived values; nothing here stores or logs a number.

What the metadata can and cannot tell
-------------------------------------
- *possible* checks the length only; *valid* checks length and the prefixes a numbering
  plan has allocated. A valid number is not necessarily in service.
- The *type* comes from the numbering plan. Some plans cannot tell a mobile from a fixed
  line (the United States and Canada: ``fixed_line_or_mobile``), and only some plans set
  VoIP ranges apart (the United Kingdom's 056, Japan's 050, France's 09, ...): China's plan
  has none, so ``voip`` is a floor, not a census.
- The *carrier* is the operator the number block was first allocated to; a number ported to
  another operator still shows the first. Known for mobile numbers only.

>>> facts = phone_facts("+8613800138000")
>>> facts.valid, facts.type, facts.region, facts.carrier
(True, 'mobile', 'CN', 'China Mobile')
>>> phone_facts("+445612345678").type
'voip'
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType, carrier

# PhoneNumberType values as the feature's words.
_TYPES: dict[int, str] = {
    PhoneNumberType.FIXED_LINE: "fixed_line",
    PhoneNumberType.MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "fixed_line_or_mobile",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.PREMIUM_RATE: "premium_rate",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "voip",
    PhoneNumberType.PERSONAL_NUMBER: "personal_number",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
}
PHONE_TYPES: tuple[str, ...] = (*_TYPES.values(), "unknown")


@dataclass(frozen=True, slots=True)
class PhoneFacts:
    """The number's own facts: possible (length), valid (allocated range), type, region
    (ISO 3166 country of the numbering plan, None when it cannot be placed) and the carrier
    the range was first allocated to (None when the data does not say)."""

    possible: bool
    valid: bool
    type: str
    region: str | None
    carrier: str | None


UNPARSABLE = PhoneFacts(possible=False, valid=False, type="unknown", region=None, carrier=None)


def phone_facts(e164: str) -> PhoneFacts:
    """Facts of an E.164 number; an unknown country code gives ``UNPARSABLE``.

    >>> phone_facts("+999123").valid
    False
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return UNPARSABLE
    valid = phonenumbers.is_valid_number(number)
    kind = _TYPES.get(phonenumbers.number_type(number), "unknown") if valid else "unknown"
    name = carrier.name_for_number(number, "en") if valid else ""
    return PhoneFacts(
        possible=phonenumbers.is_possible_number(number),
        valid=valid,
        type=kind,
        region=phonenumbers.region_code_for_number(number) if valid else None,
        carrier=name or None,
    )


@functools.cache
def warm_numbering_plans() -> int:
    """Load every region's numbering plan and compile its patterns now, once a process, and
    keep them compiled; returns how many example numbers (each region's, of every type its
    plan has) were checked to do it.

    ``phonenumbers`` loads a region's plan, compiles its patterns and loads its carriers the
    first time a number of that region is checked (10-30 ms inside that login), and keeps
    compiled patterns only in ``re``'s own cache of 512, while every region's plan holds
    ~1,200: once numbers from many regions had been seen, a new number compiled its region's
    patterns again (0.43 against 0.06 ms a number over every region's examples, this machine).
    ``phonenumbers.enable_pattern_cache`` keeps them all (bounded by the metadata).
    """
    phonenumbers.enable_pattern_cache()
    PhoneMetadata.load_all()
    checked = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in _TYPES:  # a type's patterns are compiled when a number is checked
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None:
                phone_facts(phonenumbers.format_number(example, PhoneNumberFormat.E164))
                checked += 1
    return checked


def country_mismatch(
    phone_region: str | None, ip_country: str | None, *, ip_locates_user: bool
) -> bool | None:
    """The number's country differs from the IP's; None when either is unknown or the IP's
    location is not the user's (a VPN, Tor or hosting exit).

    >>> country_mismatch("CN", "JP", ip_locates_user=True)
    True
    >>> country_mismatch("CN", "JP", ip_locates_user=False) is None
    True
    """
    if phone_region is None or ip_country is None or not ip_locates_user:
        return None
    return phone_region != ip_country


def recycled_since(
    recycled_at: float | None, *, last_login: float | None, now: float
) -> bool | None:
    """Whether the number changed hands after the user's last verified login.

    ``recycled_at`` is when the carrier reassigned the number (None: never, as far as the
    lists know); an entry dated after ``now`` had not happened yet at event time (replays).
    None when the user has no verified login to compare with.

    >>> recycled_since(200.0, last_login=100.0, now=300.0)
    True
    >>> recycled_since(50.0, last_login=100.0, now=300.0)
    False
    >>> recycled_since(None, last_login=100.0, now=300.0)
    False
    """
    if last_login is None:
        return None
    if recycled_at is None or recycled_at > now:
        return False
    return recycled_at > last_login
