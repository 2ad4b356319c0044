"""Worlds the simulator can draw: how a mall's customers and attackers behave, in numbers.

The rules were tuned on one world (``World.default()``, the simulator's traffic as it always
was). A ``World`` drawn from a seed (``World.draw(seed)``) moves every behaviour that real
traffic varies on across a wide range: how many customers are on IPv6, behind a carrier's
NAT, on the web, on café Wi-Fi; how many share a household or borrow a relative's phone;
how many switched ad tracking off; how often they mistype a password, travel, buy a phone,
change SIM or move house; which signals their clients can report at all (an iOS app never
sees the SIM, an Android 10+ app neither, the Wi-Fi name needs the location permission);
how often a challenged customer passes; and the attack mix, including the attacks a
device-and-network engine is weakest against.

A world is only numbers; ``riskengine.tools.simulate.Simulator(world=...)`` turns it into
traffic. The default world's values are the constants the simulator always used, and every
behaviour the default world lacks is off (share 0), so its traffic is byte for byte what it
was.

>>> World.draw(7) == World.draw(7), World.draw(7) == World.draw(8)
(True, False)
>>> World.default().outcome_labels
False
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields
from typing import Any

# The world's own random stream is seeded apart from the traffic's (see Simulator).
WORLD_STREAM_OFFSET = 0x57_0A_1D


@dataclass(frozen=True, slots=True)
class World:
    """One world's behaviour shares (each in [0, 1] unless its name gives a unit).

    The first block are the constants the simulator always had; the rest are off in the
    default world.
    """

    seed: int = 0
    # -- customers: the simulator's own constants
    abroad_share: float = 0.06  # customers who live abroad
    ipv6_share: float = 0.4  # customers whose home line has IPv6 (where the city has it)
    ipv6_session_share: float = 0.6  # their home logins that go over IPv6
    home_wifi_share: float = 0.55  # app logins on home or office Wi-Fi
    public_wifi_share: float = 0.05  # app logins on café, mall or hotel Wi-Fi
    web_share: float = 0.35  # customers who also shop from a computer
    second_device_share: float = 0.15  # customers with a tablet or second phone
    typo_share: float = 0.04  # password logins that start with a typo
    sms_login_share: float = 0.25  # app logins by SMS code (mainland numbers)
    trip_share: float = 0.12  # customers who travel during the period
    trip_abroad_share: float = 0.4  # of trips, those abroad
    new_phone_share: float = 0.08  # customers who buy a new phone
    joins_share: float = 0.08  # customers who register during the period
    # -- customers: behaviours the default world lacks
    ipv6_mobile_share: float = 0.0  # cellular logins over the carrier's IPv6
    national_ipv6: bool = False  # home IPv6 in every mainland city, not only the table's
    cgnat_addresses: int = 0  # public addresses per carrier /16 in use (0: any address)
    mobile_web_share: float = 0.0  # logins from a phone's browser or in-app browser (H5)
    household_share: float = 0.0  # customers in a household sharing a tablet and the line
    borrowed_device_share: float = 0.0  # customers who sometimes use a relative's phone
    ad_tracking_off_share: float = 0.0  # phones whose app reads an all-zero advertising id
    forgot_password_share: float = 0.0  # logins after several wrong passwords, then by code
    local_sim_share: float = 0.0  # trips abroad on a local SIM (local carrier's network)
    airport_share: float = 0.0  # trips with a login from the airport's Wi-Fi
    new_sim_share: float = 0.0  # customers who get a new SIM on the same number
    address_churn_share: float = 0.0  # customers who move or change broadband provider
    # -- what clients can report (platform_limits: iOS and Android 10+ rules apply)
    platform_limits: bool = False
    ios_share: float = 0.0  # of phones (0: the phone table's own shares)
    old_android_share: float = 0.0  # phones on Android 9 or older (IMEI and SIM readable)
    android_id_share: float = 0.0  # Android apps that use the Android id as the device id
    vendor_id_share: float = 0.0  # Android apps that use the vendor's id (VAID)
    sim_ids_share: float = 1.0  # Android 10+ apps that can still read IMSI/ICCID
    ssid_share: float = 1.0  # app installs granted the location permission (Wi-Fi name)
    bluetooth_share: float = 0.5  # Android installs granted the Bluetooth permission
    # -- step-ups and reports
    outcome_labels: bool = False  # labels say what each actor passes and when victims report
    customer_pass_rate: float = 0.97
    captcha_solver_share: float = 0.0  # bot campaigns that pay a captcha-solving service
    phished_email_share: float = 0.0  # targeted attackers who also phish the e-mail code
    report_share: float = 0.0  # victims of a successful login who report it
    report_median_hours: float = 24.0
    # -- attack mix (1.0: the simulator's volumes)
    stuffing_scale: float = 1.0
    spraying_scale: float = 1.0
    targeted_scale: float = 1.0
    weak_spot_share: float = 0.0  # victims per weak-spot scenario, share of customers
    port_reported_share: float = 0.0  # number ports the carrier reports (signal lists)

    @classmethod
    def default(cls) -> World:
        """The world the rules were tuned on: the simulator's traffic as it always was."""
        return cls()

    @classmethod
    def draw(cls, seed: int) -> World:
        """A world whose behaviours are drawn from wide ranges by ``seed``."""
        rng = random.Random(seed + WORLD_STREAM_OFFSET)
        u = rng.uniform
        return cls(
            seed=seed,
            abroad_share=u(0.02, 0.15),
            ipv6_share=u(0.0, 0.9),
            ipv6_session_share=u(0.3, 0.95),
            home_wifi_share=u(0.3, 0.75),
            public_wifi_share=u(0.02, 0.15),
            web_share=u(0.1, 0.6),
            second_device_share=u(0.05, 0.35),
            typo_share=u(0.01, 0.12),
            sms_login_share=u(0.05, 0.6),
            trip_share=u(0.03, 0.3),
            trip_abroad_share=u(0.1, 0.6),
            new_phone_share=u(0.03, 0.2),
            joins_share=u(0.03, 0.15),
            ipv6_mobile_share=u(0.0, 0.8),
            national_ipv6=True,
            cgnat_addresses=rng.choice((16, 64, 256, 1024, 4096)),
            mobile_web_share=u(0.0, 0.25),
            household_share=u(0.0, 0.3),
            borrowed_device_share=u(0.0, 0.15),
            ad_tracking_off_share=u(0.0, 0.4),
            forgot_password_share=u(0.0, 0.02),
            local_sim_share=u(0.0, 0.7),
            airport_share=u(0.0, 1.0),
            new_sim_share=u(0.0, 0.08),
            address_churn_share=u(0.0, 0.1),
            platform_limits=True,
            ios_share=u(0.1, 0.6),
            old_android_share=u(0.0, 0.3),
            android_id_share=u(0.0, 0.4),
            vendor_id_share=u(0.0, 0.2),
            sim_ids_share=u(0.0, 1.0),
            ssid_share=u(0.0, 1.0),
            bluetooth_share=u(0.0, 1.0),
            outcome_labels=True,
            customer_pass_rate=u(0.88, 0.99),
            captcha_solver_share=u(0.0, 0.8),
            phished_email_share=u(0.0, 0.3),
            report_share=u(0.3, 0.9),
            report_median_hours=u(2.0, 72.0),
            stuffing_scale=u(0.3, 3.0),
            spraying_scale=u(0.3, 3.0),
            targeted_scale=u(0.5, 2.0),
            weak_spot_share=u(0.005, 0.02),
            port_reported_share=u(0.0, 1.0),
        )

    def replace(self, **changes: Any) -> World:
        """A copy with ``changes`` (the tests move one behaviour at a time)."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown world parameters: {sorted(unknown)}")
        return World(**{**asdict(self), **changes})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
