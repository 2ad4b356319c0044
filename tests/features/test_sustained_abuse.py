"""How long a network has been failing across many accounts (issue #18): the definition of
an abusive 10-minute bucket and of failing now, over the buckets a store returns."""

from __future__ import annotations

from features.extract import ABUSE_ACCOUNTS, sustained_abuse
from features.profile import ABUSE_BUCKET_S, ABUSE_BUCKETS, abuse_bucket, account_bit

NOW = 1_700_000_000.0
B = abuse_bucket(NOW)
MANY = (1 << ABUSE_ACCOUNTS) - 1  # a sketch of exactly ABUSE_ACCOUNTS accounts
FEW = (1 << (ABUSE_ACCOUNTS - 1)) - 1  # one account fewer


def test_a_bucket_is_abusive_with_enough_failing_accounts_and_half_its_attempts_failed() -> None:
    abusive = (B - 3, 16, 8, MANY)
    assert sustained_abuse((abusive,), NOW, failed=False, bit=0) == (10, 0)
    assert sustained_abuse(((B - 3, 16, 8, FEW),), NOW, failed=False, bit=0) == (0, 0)
    assert sustained_abuse(((B - 3, 17, 8, MANY),), NOW, failed=False, bit=0) == (0, 0)


def test_the_attempt_scored_counts_in_the_current_bucket() -> None:
    almost = (B, 15, 7, FEW)
    bit = 1 << 40
    assert sustained_abuse((almost,), NOW, failed=True, bit=bit) == (10, ABUSE_ACCOUNTS)
    assert sustained_abuse((almost,), NOW, failed=False, bit=bit) == (0, ABUSE_ACCOUNTS - 1)


def test_failing_now_is_the_current_and_the_previous_bucket() -> None:
    buckets = ((B - 2, 4, 4, 0b0001), (B - 1, 4, 4, 0b0110), (B, 4, 4, 0b0011))
    assert sustained_abuse(buckets, NOW, failed=False, bit=0)[1] == 3


def test_six_hours_of_buckets_count_and_older_ones_do_not() -> None:
    buckets = tuple((B - k, 8, 8, MANY) for k in range(ABUSE_BUCKETS, -1, -1))
    assert sustained_abuse(buckets, NOW, failed=False, bit=0)[0] == ABUSE_BUCKETS * 10


def test_a_login_stamped_in_the_past_reads_up_to_the_latest_bucket() -> None:
    later = ((B + 5, 8, 8, MANY),)
    assert sustained_abuse(later, NOW, failed=False, bit=0) == (10, ABUSE_ACCOUNTS)
    past = NOW - ABUSE_BUCKET_S * 3
    assert sustained_abuse(later, past, failed=False, bit=0) == (10, ABUSE_ACCOUNTS)


def test_an_accounts_sketch_bit_is_one_of_64_and_stable() -> None:
    bits = {account_bit(f"user-{n}") for n in range(1000)}
    assert len(bits) == 64 and all(b.bit_count() == 1 and b < 1 << 64 for b in bits)
    assert account_bit("user-1") == account_bit("user-1")
