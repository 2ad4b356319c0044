"""The one list of features: name (with its unit), type, meaning, and the model's fixed range.

Rules may only name features listed here; the anomaly model reads the ones that carry a
``model_range``. The range is fixed on purpose: a scaler fitted to live traffic can be
stretched by an attacker's extreme values until normal logins look alike. The Freeman et
al. baseline (``models.freeman``) reads the ones named in ``FREEMAN_ATTRIBUTES``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from features.useragent import parse_user_agent

if TYPE_CHECKING:
    from features.event import LoginEvent

Kind = Literal["bool", "int", "float", "str"]


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    name: str
    kind: Kind
    description: str
    model_range: tuple[float, float] | None = None


def _b(name: str, description: str, model: bool = False) -> FeatureSpec:
    return FeatureSpec(name, "bool", description, (0.0, 1.0) if model else None)


_SCORED: tuple[FeatureSpec, ...] = (
    # -- the event itself
    _b("auth_failed", "The password or OTP check of this attempt failed."),
    FeatureSpec("event_type", "str", "login or registration."),
    FeatureSpec("login_method", "str", "password, sms_otp, email_otp or oauth."),
    FeatureSpec("network_type", "str", "wifi, cellular, ethernet or unknown."),
    # -- the user's history
    _b("user_is_new", "No successful login of this user has been learned yet."),
    FeatureSpec("user_logins_count", "int", "Successful logins learned for this user."),
    FeatureSpec(
        "days_since_last_login",
        "float",
        "Days since the user's last learned successful login (None for a new user).",
        (0.0, 90.0),
    ),
    # -- device
    _b("device_id_present", "The event carries a usable device id (IMEI or OAID)."),
    _b("device_known", "This device id was seen in the user's successful logins.", True),
    _b(
        "device_trusted",
        "A known device on which this user passed a step-up (an OTP or a challenge) in the "
        "last 180 days: trust expires.",
    ),
    _b(
        "marked_bad",
        "The device, address block or Wi-Fi of this login was seen in confirmed fraud on "
        "this account.",
        True,
    ),
    _b(
        "device_reported",
        "The device id of this login is one the account's owner or an analyst named in a "
        "fraud verdict.",
    ),
    _b("new_device", "A device id the user has never logged in with (None: no id or new user)."),
    FeatureSpec("device_model", "str", "Device model, from the device fields or the user agent."),
    _b("device_model_known", "This device model (or user-agent device) was seen before."),
    FeatureSpec("os_family", "str", "OS name, from the device fields or the user agent."),
    _b("os_family_known", "This OS family was seen before for the user."),
    _b("os_downgrade", "A known device reports a lower OS version than it had before.", True),
    _b(
        "device_mismatch",
        "A known device id now reports another model, OS or Bluetooth address: the id is "
        "probably replayed on other hardware (None unless the device is known).",
        True,
    ),
    _b(
        "device_sim_mismatch",
        "A known device now carries another SIM than it did (a customer's new card, or a "
        "stolen phone with the thief's); None unless both SIMs are known.",
    ),
    _b("bluetooth_known", "This Bluetooth address was seen before for the user."),
    FeatureSpec(
        "device_id_kind",
        "str",
        "What the device id is: imei, meid, android_id, uuid (IDFV, IDFA, some OAIDs), oaid or "
        "vendor (None without a usable id).",
    ),
    FeatureSpec(
        "client_version",
        "str",
        "The app's build (MallApp/8.6.2) or the browser's version, from the user agent.",
    ),
    _b(
        "client_downgrade",
        "A known device reports an older app or browser build than it had before: builds "
        "only move forward on real hardware (None unless the device is known).",
    ),
    FeatureSpec(
        "device_speed_kmh",
        "float",
        "Speed needed to go from where this device was last verified to this login's place "
        "(None unless both places locate the user): one device cannot be in two places.",
    ),
    FeatureSpec(
        "browser_family",
        "str",
        "Browser, OS and device type of a web login without a device id (the web's device).",
    ),
    _b(
        "browser_known",
        "A web login from a browser family seen in the user's verified web logins (None for "
        "an app login, without a user agent, or for a new user).",
    ),
    _b(
        "household_device",
        "A device new to this user but used by other accounts, seen on a network of this "
        "user's own (address block or Wi-Fi), not an anonymiser: a family member's phone.",
    ),
    FeatureSpec("user_devices", "int", "Devices in the user's verified history."),
    FeatureSpec("user_countries", "int", "Countries in the user's verified history."),
    FeatureSpec("user_asns", "int", "Network operators in the user's verified history."),
    FeatureSpec("user_anonymised_logins", "int",
                "Verified logins of the user through a hosting or VPN range."),
    FeatureSpec(
        "device_accounts_30d",
        "int",
        "Distinct accounts seen on this device id in 30 days, this one included.",
        (1.0, 20.0),
    ),
    # -- IP
    FeatureSpec("ip_version", "int", "4 or 6."),
    _b("ip_is_private", "Private, loopback, link-local or otherwise reserved address."),
    FeatureSpec("ip_country", "str", "ISO 3166 country of the IP (None when unknown)."),
    FeatureSpec("ip_city", "str", "City of the IP (None when unknown)."),
    FeatureSpec("ip_asn", "int", "Autonomous system number of the IP (None when unknown)."),
    FeatureSpec("ip_latitude_deg", "float", "Latitude of the IP's city."),
    FeatureSpec("ip_longitude_deg", "float", "Longitude of the IP's city."),
    _b("ip_is_hosting", "The IP is in a hosting, cloud, CDN or crawler range.", True),
    _b("ip_is_vpn", "The IP is a known consumer VPN or private relay exit.", True),
    _b("ip_is_tor", "The IP is a Tor exit node.", True),
    FeatureSpec(
        "ip_allowlisted",
        "str",
        "The allow-list entry (CIDR or ASN) of this tenant the IP falls in, if any. Set by the "
        "engine from the ruleset's lists, not by the extractor.",
    ),
    FeatureSpec(
        "ip_denylisted",
        "str",
        "The deny-list entry (CIDR or ASN) of this tenant the IP falls in, if any.",
    ),
    # -- novelty against the user's own history
    _b("new_ip_prefix", "The /24 (IPv4) or /48 (IPv6) network is new for the user.", True),
    _b("new_asn", "The network operator (ASN) is new for the user.", True),
    _b("new_country", "The country is new for the user.", True),
    _b("new_city", "The city is new for the user."),
    _b("new_ssid", "The Wi-Fi network name is new for the user (None without an SSID)."),
    _b("ssid_known", "The Wi-Fi network name was seen in the user's successful logins."),
    _b("ip_prefix_known", "The /24 or /48 network was seen in the user's successful logins."),
    _b("asn_known", "The ASN was seen in the user's successful logins."),
    _b(
        "last_login_mobile",
        "The user's last located verified login came over mobile data, so its place is a "
        "carrier's exit rather than the user's (None without a located login).",
    ),
    _b(
        "same_country_as_last",
        "The country is the one of the user's last verified login (None when either is "
        "unknown).",
    ),
    _b(
        "sim_changed",
        "This phone number was seen with another SIM before and this SIM is new for it.",
        True,
    ),
    # -- time
    FeatureSpec("local_hour", "float", "Hour of day in the IP's time zone (0..24)."),
    FeatureSpec("local_hour_sin", "float", "sin(2*pi*local_hour/24).", (-1.0, 1.0)),
    FeatureSpec("local_hour_cos", "float", "cos(2*pi*local_hour/24).", (-1.0, 1.0)),
    FeatureSpec(
        "hour_rarity",
        "float",
        "0 when the user often logs in at this hour, 1 when never (None for a new user).",
        (0.0, 1.0),
    ),
    # -- velocity
    FeatureSpec(
        "geo_distance_km",
        "float",
        "Distance from the city of the last successful login.",
        (0.0, 20000.0),
    ),
    FeatureSpec(
        "geo_velocity_kmh",
        "float",
        "Speed needed to travel from the last successful login to here.",
        (0.0, 2000.0),
    ),
    FeatureSpec("hours_since_last_login", "float", "Hours since the last successful login."),
    FeatureSpec(
        "user_failures_10m",
        "int",
        "Failed attempts of this user in 10 minutes, this one included.",
        (0.0, 20.0),
    ),
    FeatureSpec(
        "user_failures_24h",
        "int",
        "Failed attempts of this user in 24 hours, this one included.",
        (0.0, 50.0),
    ),
    FeatureSpec(
        "tenant_failures_10m",
        "int",
        "Failed attempts on the whole tenant in 10 minutes, this one included.",
    ),
    FeatureSpec(
        "tenant_failure_ratio_10m",
        "float",
        "Share of the tenant's attempts in 10 minutes that failed: a stuffing wave lifts it.",
        (0.0, 1.0),
    ),
    FeatureSpec(
        "ip_users_10m",
        "int",
        "Distinct accounts tried from this IP in 10 minutes, this one included, among the "
        "window's latest attempts (the stores' WINDOW_SCAN_MAX).",
        (1.0, 50.0),
    ),
    FeatureSpec(
        "ip_failures_10m",
        "int",
        "Failed attempts from this IP in 10 minutes, this one included, among the "
        "window's latest attempts (the stores' WINDOW_SCAN_MAX).",
        (0.0, 50.0),
    ),
    FeatureSpec(
        "ip_failures_per_user_10m",
        "float",
        "ip_failures_10m / ip_users_10m: about one or more for a bot trying stolen "
        "credentials, a small fraction behind a busy carrier NAT where people mistype.",
    ),
    FeatureSpec(
        "asn_users_10m",
        "int",
        "Distinct accounts tried from this ASN in 10 minutes, this one included, among the "
        "window's latest attempts (the stores' WINDOW_SCAN_MAX).",
    ),
    FeatureSpec(
        "asn_failures_10m",
        "int",
        "Failed attempts from this ASN in 10 minutes, this one included, among the "
        "window's latest attempts (the stores' WINDOW_SCAN_MAX).",
    ),
    FeatureSpec(
        "ip_prefix_abuse_minutes_6h",
        "int",
        "Minutes of the last 6 hours, in whole 10-minute buckets, in which this address "
        "block (/24, /48) failed on at least 8 accounts with half its attempts or more "
        "failing, this attempt included (features.extract.ABUSE_ACCOUNTS, "
        "ABUSE_FAILURE_SHARE): how long it has been failing across many accounts.",
    ),
    FeatureSpec(
        "ip_prefix_failed_accounts_20m",
        "int",
        "Accounts with a failed attempt from this address block in the current and the "
        "previous 10-minute bucket (10 to 20 minutes), this attempt included; read from a "
        "64-bit sketch, so never more than the truth: whether the block is failing now.",
    ),
    FeatureSpec(
        "asn_abuse_minutes_6h",
        "float",
        "ip_prefix_abuse_minutes_6h for the whole ASN (None when the ASN is unknown).",
    ),
    FeatureSpec(
        "asn_failed_accounts_20m",
        "int",
        "ip_prefix_failed_accounts_20m for the whole ASN (None when the ASN is unknown).",
    ),
    # -- the phone number and external signals: set by the engine from riskengine.adapters.signals
    # (the extractor leaves them None). None: not asked (no phone number in the event, or
    # no such provider configured). "unknown": asked, but the lookup failed, timed out,
    # was skipped by an open circuit breaker, or did not answer within the scoring budget.
    _b("phone_possible", "The phone number has a possible length for its country."),
    _b("phone_valid", "The phone number is in a range its country's numbering plan allocated."),
    FeatureSpec(
        "phone_type",
        "str",
        "mobile, fixed_line, fixed_line_or_mobile (plans that cannot tell), voip (only where "
        "the plan sets VoIP ranges apart), toll_free, premium_rate, shared_cost, "
        "personal_number, pager, uan, voicemail or unknown (an invalid number).",
    ),
    FeatureSpec("phone_region", "str", "ISO 3166 country of the phone number's numbering plan."),
    FeatureSpec(
        "phone_carrier",
        "str",
        "Operator the number's range was first allocated to (a ported number keeps it); mobile "
        "numbers only.",
    ),
    _b(
        "phone_ip_country_mismatch",
        "The phone number's country is not the IP's country (None when either is unknown or the "
        "IP is a VPN, Tor or hosting exit).",
    ),
    FeatureSpec(
        "phone_accounts_30d",
        "int",
        "Distinct accounts seen with this phone number in 30 days, this one included. Counted "
        "per instance, in memory, by pseudonym.",
    ),
    FeatureSpec(
        "phone_risk_level",
        "str",
        "Risk level of the number from the phone-risk lists or service: low, medium, high, "
        "unlisted (no entry) or unknown (no answer).",
    ),
    FeatureSpec(
        "phone_recycled_status",
        "str",
        "The carriers' recycled-number lists: recycled (the number was reassigned at some "
        "date), unlisted, or unknown (no answer).",
    ),
    _b(
        "phone_recycled_since_last_login",
        "The number was reassigned to a new subscriber after this user's last verified login: "
        "SMS codes now reach someone else (None for a new user or without an answer).",
    ),
    FeatureSpec(
        "ip_reputation",
        "str",
        "Category of the IP or its ASN in the reputation lists: botnet, abuse, proxy, tor, vpn, "
        "hosting, unlisted, or unknown (no answer). The most specific entry wins.",
    ),
)

# -- which network and which client, exactly: the finest levels of the Freeman et al.
# baseline's hierarchies (``identity_features`` computes them from the event alone).

IDENTITY_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec(
        "ip_key",
        "str",
        "Pseudonym of the IP address (the event's keyed hash of it): one value per address, "
        "never the address itself.",
    ),
    FeatureSpec(
        "user_agent_hash",
        "str",
        "First 16 hex digits of the SHA-256 of the user-agent string (None without one).",
    ),
    FeatureSpec(
        "ua_browser",
        "str",
        "Browser and its major.minor version, as the user agent names them: 'Chrome 86.0' "
        "(None without a user agent or a browser it names).",
    ),
    FeatureSpec(
        "ua_os",
        "str",
        "OS and its version, as the user agent names them: 'Mac OS X 10.14.6' (None without "
        "a user agent or an OS it names). Unlike os_family, never from the device fields.",
    ),
    FeatureSpec(
        "ua_device_type",
        "str",
        "mobile, tablet, desktop, bot or unknown, as the user agent says (None without one).",
    ),
)

FEATURES: tuple[FeatureSpec, ...] = (*_SCORED, *IDENTITY_FEATURES)
BY_NAME: dict[str, FeatureSpec] = {f.name: f for f in FEATURES}
MODEL_FEATURES: tuple[FeatureSpec, ...] = tuple(f for f in FEATURES if f.model_range)

#: The attributes of the Freeman et al. baseline (``models.freeman``): its IP hierarchy
#: (address, ASN, country) and its user-agent hierarchy (string, browser with version, OS
#: with version, device type), each finest level first.
FREEMAN_ATTRIBUTES: tuple[str, ...] = (
    "ip_key", "ip_asn", "ip_country",
    "user_agent_hash", "ua_browser", "ua_os", "ua_device_type",
)


def _with_version(name: str | None, version: str | None) -> str | None:
    if not name:
        return None
    return f"{name} {version}" if version else name


def identity_features(event: LoginEvent) -> dict[str, str | None]:
    """The values of ``IDENTITY_FEATURES`` for one login: they depend on the event alone.

    ``ua_browser`` and ``ua_os`` carry their version, as the RBA dataset's "Browser Name and
    Version" and "OS Name and Version" columns that Freeman's weights were fitted on do.
    Everything derived from the user agent is None when there is none.
    """
    ua = event.user_agent or None
    if ua is None:
        return {"ip_key": event.ip_key, "user_agent_hash": None, "ua_browser": None,
                "ua_os": None, "ua_device_type": None}
    parsed = parse_user_agent(ua)
    return {
        "ip_key": event.ip_key,
        "user_agent_hash": hashlib.sha256(ua.encode("utf-8")).hexdigest()[:16],
        "ua_browser": _with_version(parsed.browser, parsed.browser_version),
        "ua_os": _with_version(parsed.os, parsed.os_version),
        "ua_device_type": parsed.device_type,
    }
