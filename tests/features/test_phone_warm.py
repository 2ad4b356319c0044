"""``features.phone.warm_numbering_plans``: once it has run, checking a number of any
region compiles no regular expression (each runs in a fresh interpreter: the warm-up and
``phonenumbers``' pattern cache are for the whole process)."""

from __future__ import annotations

import subprocess
import sys

# Numbers of every region that are not the examples the warm-up checks (the example's last
# digit changed), then counted: calls of the ``re`` module's compiler while checking them.
_SCRIPT = """
import re._compiler, sys
import phonenumbers
from features.phone import phone_facts, warm_numbering_plans
warmed = warm_numbering_plans() if sys.argv[1] == "warm" else 0
numbers = []
for region in sorted(phonenumbers.SUPPORTED_REGIONS):
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE,
                 phonenumbers.PhoneNumberType.VOIP, phonenumbers.PhoneNumberType.TOLL_FREE):
        ex = phonenumbers.example_number_for_type(region, kind)
        if ex is not None:
            e164 = phonenumbers.format_number(ex, phonenumbers.PhoneNumberFormat.E164)
            numbers.append(e164[:-1] + str((int(e164[-1]) + 3) % 10))
compiled = 0
def count(frame, event, arg):
    global compiled
    if event == "call" and frame.f_code is re._compiler.compile.__code__:
        compiled += 1
sys.setprofile(count)
for number in numbers:
    phone_facts(number)
sys.setprofile(None)
print(warmed, len(numbers), compiled)
"""


def _run(mode: str) -> tuple[int, int, int]:
    done = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True,
                          text=True, timeout=300, check=True)
    warmed, checked, compiled = map(int, done.stdout.split())
    return warmed, checked, compiled


def test_after_the_warm_up_no_number_compiles_a_pattern() -> None:
    warmed, checked, compiled = _run("warm")
    assert warmed > 400  # every region's examples of every type
    assert checked > 400
    assert compiled == 0


def test_without_it_the_first_numbers_of_a_region_compile_their_plan() -> None:
    _, _, compiled = _run("cold")
    assert compiled > 500  # more than re's own cache holds
