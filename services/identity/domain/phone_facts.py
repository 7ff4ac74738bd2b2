"""What a phone number says about a lead, without showing the number: for leads' verdicts.

Identity is the only service that sees raw numbers; it passes these facts on with the masked value.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

# Mobile virtual network operators (MVNO) ranges: cheap, disposable numbers favoured by brushing
# farms. A risk to flag, not a reason to reject: plenty of real customers use them.
VIRTUAL_OPERATOR_PREFIXES = ("162", "165", "167", "170", "171")
RUN = 6  # this many consecutive ascending or descending digits look typed, not assigned


def _longest_run(digits: str, step: int) -> int:
    best = current = 1
    for a, b in zip(digits, digits[1:]):
        current = current + 1 if int(b) - int(a) == step else 1
        best = max(best, current)
    return best


def phone_facts(e164: str) -> list[str]:
    """Facts about a normalised (E.164) number, e.g. ["mobile", "virtual_operator"]."""
    number = phonenumbers.parse(e164)
    national = str(number.national_number)
    facts = []
    if number.country_code != 86:
        facts.append("foreign")
    kind = phonenumbers.number_type(number)
    if kind in (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        facts.append("mobile")
    elif kind == PhoneNumberType.FIXED_LINE:
        facts.append("landline")
    if number.country_code == 86 and national[:3] in VIRTUAL_OPERATOR_PREFIXES:
        facts.append("virtual_operator")
    if max(_longest_run(national, 1), _longest_run(national, -1)) >= RUN:
        facts.append("sequential_digits")
    if max(national.count(d) for d in set(national)) >= len(national) - 3:
        facts.append("repeated_digits")
    return facts
