"""Identifier validation and normalisation: what the API edge accepts, refuses or drops."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from features.identifiers import (
    PLACEHOLDER_BLUETOOTH,
    account_kind,
    is_e164,
    is_iccid,
    is_imei,
    is_imsi,
    is_oaid,
    is_placeholder_mac,
    is_placeholder_oaid,
    luhn_ok,
    normalize_mac,
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


class TestOaid:
    @pytest.mark.parametrize(
        "value",
        [
            "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
            "A1B2C3D4-E5F6-7890-ABCD-EF1234567890",
            "f" * 64,
            "0123456789abcdef",
        ],
    )
    def test_hex_digits_and_dashes_are_an_oaid(self, value: str) -> None:
        assert is_oaid(value)

    @pytest.mark.parametrize(
        "value",
        [
            "a1b2c3d4-e5f6",  # too short
            "f" * 65,  # too long
            "g1b2c3d4-e5f6-7890-abcd-ef1234567890",  # not hex
            "-" * 20,  # no digit at all
            "a1b2c3d4 e5f6 7890 abcd ef1234567890",
        ],
    )
    def test_other_strings_are_not_an_oaid(self, value: str) -> None:
        assert not is_oaid(value)

    @pytest.mark.parametrize(
        "value", ["00000000-0000-0000-0000-000000000000", "0" * 32, "0000-0000-0000-0000"]
    )
    def test_all_zero_oaid_is_the_limit_tracking_placeholder(self, value: str) -> None:
        assert is_placeholder_oaid(value)

    @pytest.mark.parametrize(
        "value",
        ["a1b2c3d4-e5f6-7890-abcd-ef1234567890", "00000000-0000-0000-0000-000000000001", "-" * 20],
    )
    def test_a_real_oaid_is_not_the_placeholder(self, value: str) -> None:
        assert not is_placeholder_oaid(value)


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
