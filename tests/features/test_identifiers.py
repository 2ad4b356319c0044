"""Identifier validation and normalisation: what the API edge accepts, refuses or drops."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from features.identifiers import (
    PLACEHOLDER_BLUETOOTH,
    DeviceIdError,
    account_kind,
    device_id_kind,
    is_e164,
    is_iccid,
    is_imei,
    is_imsi,
    is_placeholder_id,
    is_placeholder_mac,
    luhn_ok,
    normalize_device_id,
    normalize_mac,
    normalize_ssid,
)

VALID_IMEIS = ["490154203237518", "356938035643809"]


class TestImei:
    @pytest.mark.parametrize("imei", VALID_IMEIS)
    def test_fifteen_digits_with_a_valid_check_digit_is_an_imei(self, imei: str) -> None:
        assert is_imei(imei)

    @pytest.mark.parametrize("imei", VALID_IMEIS)
    def test_every_other_check_digit_is_refused(self, imei: str) -> None:
        body, check = imei[:-1], imei[-1]
        for digit in "0123456789":
            if digit != check:
                assert not is_imei(body + digit), body + digit

    @pytest.mark.parametrize(
        "value",
        [
            "49015420323751",  # 14 digits
            "4901542032375180",  # 16 digits
            "",
            "49015420323751a",
            "490154-20323751",
        ],
    )
    def test_wrong_length_or_non_digits_is_not_an_imei(self, value: str) -> None:
        assert not is_imei(value)

    def test_luhn_accepts_known_good_numbers_and_refuses_a_transposition(self) -> None:
        assert luhn_ok("79927398713")
        assert not luhn_ok("79927398731")

    def test_a_trailing_newline_is_not_part_of_an_imei(self) -> None:
        # The check digit 4 is wrong for 49015420323751; read with '\n' as a digit the Luhn
        # sum comes out valid.
        assert not is_imei("490154203237514\n")


# What apps really send as a device id, by kind; the kind is kept as a feature.
REAL_DEVICE_IDS = [
    ("490154203237518", "imei"),  # old Android with READ_PHONE_STATE
    ("A0000012345678", "meid"),  # CDMA MEID, 14 hex digits
    ("268435456012345678", "meid"),  # MEID in decimal, 18 digits
    ("3f2a9c0e1b4d5a6f", "android_id"),  # Settings.Secure.ANDROID_ID, 64-bit hex
    ("1234567890123456", "android_id"),  # an Android id may be all digits
    ("f2a9c0e1b4d5a6f", "android_id"),  # ... and loses leading zeros in some SDKs
    ("A1B2C3D4-E5F6-7890-ABCD-EF1234567890", "uuid"),  # iOS IDFV / IDFA
    ("7d3c1e2a-9f8b-4c6d-a1e0-5b4f3c2d1e0f", "uuid"),  # Huawei / Honor OAID
    ("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "oaid"),  # Xiaomi
    ("dfb0ac7d41f1b3c9-04a6", "oaid"),
    ("HONOR_1a2b3c4d5e", "vendor"),
    ("vivo:9f8e7d6c5b4a", "vendor"),
]

# Placeholders mean "no id": never a 422, never a pseudonym shared by strangers.
DEVICE_ID_PLACEHOLDERS = [
    "0000000000000000",  # Android OAID with "limit ad tracking" on
    "0" * 64,
    "00000000-0000-0000-0000-000000000000",  # iOS IDFA/IDFV without permission
    "000000000000000",  # IMEI of a device that will not tell
    "9774d56d682e549c",  # the Android id shared by many Android 2.2 devices
    "004999010640000",  # the emulator's IMEI
    "unknown", "NULL", "undefined", "none", "",
    "   ",
    "ffffffffffffffff",
]

# What cannot be any real identifier.
NOT_DEVICE_IDS = [
    ("490154203237519", "Luhn"),  # 15 digits are an IMEI; this check digit is wrong
    ("has a space", "device id"),
    ("<script>", "device id"),
    ("ab", "device id"),  # too short to identify anything
    ("a1b2c3d4\u00e9", "device id"),  # not ASCII
]


class TestDeviceIds:
    @pytest.mark.parametrize(("value", "kind"), REAL_DEVICE_IDS)
    def test_real_shapes_are_accepted_with_their_kind(self, value: str, kind: str) -> None:
        assert device_id_kind(value) == kind
        normalized = normalize_device_id(value)
        assert normalized is not None and normalized[1] == kind

    def test_hex_ids_are_one_id_whatever_their_case(self) -> None:
        upper = normalize_device_id("A1B2C3D4-E5F6-7890-ABCD-EF1234567890")
        lower = normalize_device_id("a1b2c3d4-e5f6-7890-abcd-ef1234567890")
        assert upper == lower

    @pytest.mark.parametrize("value", DEVICE_ID_PLACEHOLDERS)
    def test_placeholders_mean_absent(self, value: str) -> None:
        assert is_placeholder_id(value)
        assert normalize_device_id(value) is None

    @pytest.mark.parametrize("value", [v for v, _ in REAL_DEVICE_IDS])
    def test_a_real_id_is_not_a_placeholder(self, value: str) -> None:
        assert not is_placeholder_id(value)

    @pytest.mark.parametrize(("value", "says"), NOT_DEVICE_IDS)
    def test_what_cannot_be_an_id_is_refused_saying_why(self, value: str, says: str) -> None:
        value = value.encode().decode("unicode_escape")
        with pytest.raises(DeviceIdError, match=says):
            device_id_kind(value)


class TestSsid:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ('"HomeNet-5G"', "HomeNet-5G"),  # Android quotes a readable name
            ("HomeNet-5G", "HomeNet-5G"),
            ("<unknown ssid>", None),  # Android without the location permission
            ("0x", None),  # a name that is not text
            ('""', None),
            ("  ", None),
        ],
    )
    def test_ssid_as_the_user_sees_it_or_absent(self, value: str, expected: str | None) -> None:
        assert normalize_ssid(value) == expected

class TestSim:
    @pytest.mark.parametrize("value", ["460001234567890", "46000123456789"])
    def test_imsi_is_14_or_15_digits(self, value: str) -> None:
        assert is_imsi(value)

    @pytest.mark.parametrize(
        "value", ["4600012345678", "4600012345678901", "46000123456789a", "", "+46000123456789"]
    )
    def test_other_lengths_or_characters_are_not_an_imsi(self, value: str) -> None:
        assert not is_imsi(value)

    @pytest.mark.parametrize(
        "value", ["898600123456789012", "8986001234567890123", "89860012345678901234"]
    )
    def test_iccid_is_18_to_20_digits_starting_with_89(self, value: str) -> None:
        assert is_iccid(value)

    @pytest.mark.parametrize(
        "value",
        [
            "12860012345678901234",  # does not start with 89
            "98860012345678901234",
            "89860012345678901",  # 17 digits
            "898600123456789012345",  # 21 digits
            "8986001234567890123a",
        ],
    )
    def test_other_values_are_not_an_iccid(self, value: str) -> None:
        assert not is_iccid(value)

    @pytest.mark.parametrize(
        ("check", "value"),
        [
            (is_imsi, "46000123456789\n"),
            (is_imsi, "４６０００１２３４５６７８９０"),
            (is_iccid, "898600123456789012\n"),
            (is_iccid, "89٨٦٠٠١٢٣٤٥٦٧٨٩٠١٢"),
        ],
    )
    def test_only_plain_ascii_digits_are_a_sim_id(
        self, check: Callable[[str], bool], value: str
    ) -> None:
        assert not check(value)


class TestPhone:
    @pytest.mark.parametrize(
        "value", ["+8613800138000", "+14155550123", "+4930123", "+1" + "2" * 14]
    )
    def test_e164_numbers(self, value: str) -> None:
        assert is_e164(value)

    @pytest.mark.parametrize(
        "value",
        [
            "8613800138000",  # no +
            "+0613800138000",  # country codes do not start with 0
            "+1" + "2" * 15,  # 16 digits
            "+123456",  # too short
            "+86138abc8000",
            "+86 138 0013 8000",
            "",
        ],
    )
    def test_not_e164(self, value: str) -> None:
        assert not is_e164(value)

    @pytest.mark.parametrize("value", ["+8613800138000\n", "+8６13800138000"])
    def test_only_plain_ascii_is_e164(self, value: str) -> None:
        assert not is_e164(value)


class TestMac:
    @pytest.mark.parametrize(
        "value",
        ["3c:22:fb:12:34:56", "3C:22:FB:12:34:56", "3c-22-fb-12-34-56", "3C22FB123456"],
    )
    def test_separators_and_case_normalise_to_lower_colon_form(self, value: str) -> None:
        assert normalize_mac(value) == "3c:22:fb:12:34:56"

    @pytest.mark.parametrize(
        "value",
        [
            "3c:22:fb:12:34",  # five octets
            "3c:22:fb:12:34:56:78",
            "3c:22-fb:12:34:56",  # mixed separators
            "3c:22:fb:12:34:5g",
            "3c.22.fb.12.34.56",
            "",
        ],
    )
    def test_not_a_mac(self, value: str) -> None:
        assert normalize_mac(value) is None

    @pytest.mark.parametrize("value", ["02:00:00:00:00:00", "02-00-00-00-00-00", "020000000000"])
    def test_android_bluetooth_placeholder_is_recognised_in_any_spelling(self, value: str) -> None:
        normalized = normalize_mac(value)
        assert normalized == PLACEHOLDER_BLUETOOTH
        assert is_placeholder_mac(normalized)

    def test_all_zero_mac_is_a_placeholder_and_a_real_one_is_not(self) -> None:
        assert is_placeholder_mac("00:00:00:00:00:00")
        assert not is_placeholder_mac("3c:22:fb:12:34:56")
        assert not is_placeholder_mac("02:00:00:00:00:01")


class TestAccountKind:
    @pytest.mark.parametrize(
        ("user_id", "kind"),
        [
            ("li.wei.8842@example.cn", "email"),
            ("+8613800138000", "phone"),
            ("13800138000", "phone"),
            ("1234567", "phone"),
            ("123456789012345", "phone"),
            ("123456", "other"),  # too short for a phone number
            ("1234567890123456", "other"),  # too long
            ("li.wei", "other"),
            ("user-42", "other"),
        ],
    )
    def test_kind_of_account_name(self, user_id: str, kind: str) -> None:
        assert account_kind(user_id) == kind
