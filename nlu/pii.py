"""Personal data: IIN/BIN checksums, Luhn, and the masker used by every log line.

The masker replaces IINs/BINs, card numbers, phone numbers and e-mail addresses with
bracketed tokens that keep at most the last few digits, e.g. ``[IIN ••••••••••34]``. It is
idempotent (masking masked text changes nothing) and never leaves 12 consecutive digits.
"""

from __future__ import annotations

import datetime as dt
import re

_W1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
_W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def iin_checksum_ok(digits: str) -> bool:
    """The official control digit of a 12-digit IIN or BIN (two weight passes, mod 11)."""
    if len(digits) != 12 or not digits.isdigit():
        return False
    d = [int(c) for c in digits]
    c = sum(x * w for x, w in zip(d[:11], _W1)) % 11
    if c == 10:
        c = sum(x * w for x, w in zip(d[:11], _W2)) % 11
        if c == 10:
            return False
    return c == d[11]


def is_valid_iin(digits: str) -> bool:
    """IIN: YYMMDD, a century/sex digit 1-6, a serial, and the control digit."""
    if not iin_checksum_ok(digits):
        return False
    century_digit = int(digits[6])
    if century_digit not in range(1, 7):
        return False
    century = {1: 1800, 2: 1800, 3: 1900, 4: 1900, 5: 2000, 6: 2000}[century_digit]
    try:
        dt.date(century + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return False
    return True


def is_valid_bin(digits: str) -> bool:
    """BIN: YYMM, a legal-form digit 4-6, a type digit, a serial, and the control digit."""
    return iin_checksum_ok(digits) and digits[4] in "456" and 1 <= int(digits[2:4]) <= 12


def luhn_ok(digits: str) -> bool:
    if not digits.isdigit() or not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


DOT = "\u2022"
# digit groups separated by single spaces or dashes (how people type long numbers)
_DIGIT_SEQ = re.compile(r"(?<![\d\[])\d(?:[ \-]?\d){11,22}(?!\d)")
_PHONE = re.compile(
    r"(?<![\w\d])(?:\+\s?7|8|7)?[\s\-]*\(?\s*[67]\d{2}\s*\)?[\s\-]*\d{3}[\s\-]*\d{2}[\s\-]*\d{2}(?!\d)"
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_ANY12 = re.compile(r"\d{12,}")


def _digits(s: str) -> str:
    return re.sub(r"\D", "", s)


def _mask_digit_seq(m: re.Match) -> str:
    raw = m.group(0)
    d = _digits(raw)
    if luhn_ok(d) and len(d) >= 13:
        return f"[CARD {DOT * 4}{d[-4:]}]"
    if len(d) == 12:
        label = "BIN" if is_valid_bin(d) and not is_valid_iin(d) else "IIN"
        return f"[{label} {DOT * 10}{d[-2:]}]"
    if len(d) > 12:
        return f"[NUMBER {DOT * 4}{d[-2:]}]"
    return raw


def _mask_phone(m: re.Match) -> str:
    d = _digits(m.group(0))
    if len(d) < 10:
        return m.group(0)
    return f"[PHONE {DOT * 3}{d[-2:]}]"


def _mask_email(m: re.Match) -> str:
    local, domain = m.group(0).split("@", 1)
    return f"[EMAIL {local[0]}{DOT * 3}@{domain}]"


def mask(text: str) -> str:
    """Mask IIN/BIN, card numbers, phones and e-mails in ``text`` (idempotent)."""
    if not text:
        return text
    out = _DIGIT_SEQ.sub(_mask_digit_seq, text)
    out = _PHONE.sub(_mask_phone, out)
    out = _EMAIL.sub(_mask_email, out)
    # belt and braces: whatever survived, no run of 12+ digits leaves this function
    return _ANY12.sub(lambda m: f"[NUMBER {DOT * 4}{m.group(0)[-2:]}]", out)
