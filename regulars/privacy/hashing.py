"""Normalise emails and phone numbers, then SHA-256 them, as Meta and Google match customer lists.

Both platforms hash the same normalised text, so a guest's hash here equals the platform's own:

- Email: trim surrounding whitespace, lower-case. Nothing else: Meta's published example keeps
  the local part as typed (`John_Smith@gmail.com` -> `john_smith@gmail.com`), and Google's
  Customer Match says removing the dots before `@gmail.com` / `@googlemail.com` is not required
  (only Campaign Manager 360's enhanced conversions asks for it). Dropping them would make the
  Meta hash of `your.name@gmail.com` miss.
  https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters
  https://developers.google.com/google-ads/api/docs/remarketing/audience-types/customer-match
- Phone: E.164 digits with the country code and no `+` (Meta: "remove symbols, letters, and any
  leading zeros"; `(650)555-1212` in the US -> `16505551212`). A national number written with
  the trunk prefix 0 (Indonesia's `0812...`) gets the chain's country code instead (`62812...`,
  `[chain] country`); without one configured, a number that does not carry its own code is not a
  phone number here, rather than another country's.
  Google hashes the same number with its `+` (`+62812...`): `hashed_phone(..., with_plus=True)`.

What cannot be an email or a phone number normalises to None (and hashes to None) rather than
raising: lake columns hold blanks and junk, and a null hash is what the SQL macros in
dbt_project/macros/pii.sql give for the same input, so Python and SQL agree row for row.
"""

from __future__ import annotations

import hashlib
import re

from regulars.settings import chain_phone_country_code

# The default of `default_country_code`: the chain's, read when a number needs it.
CHAIN_COUNTRY = "chain"
# Python's str.strip() would also strip Unicode spaces; the SQL side trims exactly these.
WHITESPACE = " \t\n\r\f\v"
# Spelled out rather than \s, whose meaning differs between Python and the SQL engine (RE2).
EMAIL = re.compile(r"[^@ \t\n\r\f\v]+@[^@ \t\n\r\f\v]+\.[^@ \t\n\r\f\v]+")
# Digits with the separators people type; a `+` only in front.
PHONE = re.compile(r"\+?[0-9 ().\-/]+")
# E.164: at most 15 digits with the country code; fewer than 8 is no subscriber number.
PHONE_MIN_DIGITS, PHONE_MAX_DIGITS = 8, 15


def normalise_email(value: str | None) -> str | None:
    """Trimmed, lower-cased email; None when blank or not shaped like `local@domain.tld`."""
    if value is None:
        return None
    email = value.strip(WHITESPACE).lower()
    return email if EMAIL.fullmatch(email) else None


def normalise_phone(
    value: str | None, default_country_code: str | None = CHAIN_COUNTRY
) -> str | None:
    """E.164 digits without `+` (`0812-3456-7890` -> `6281234567890`); None if not a phone number.

    `+<cc>...` and `00<cc>...` keep their country code. Without either, the number is taken to
    be in the default country (`[chain] country` unless given; None: no default, and such a
    number is None): `0...` drops its trunk 0 for the country code, digits that do not start
    with the country code get it (`812...` -> `62812...`; with '1', Meta's US example
    `(650)555-1212` -> `16505551212`), digits that do are kept. A foreign number written without
    `+` or `00` is ambiguous, and read as a local one.
    """
    if value is None:
        return None
    text = value.strip(WHITESPACE)
    if not PHONE.fullmatch(text):
        return None
    digits = re.sub(r"[^0-9]", "", text)
    if default_country_code == CHAIN_COUNTRY:
        default_country_code = chain_phone_country_code()
    if text.startswith("+"):
        pass
    elif digits.startswith("00"):
        digits = digits[2:]
    elif default_country_code is None:
        return None
    elif digits.startswith("0"):
        digits = default_country_code + digits[1:]
    elif not digits.startswith(default_country_code):
        digits = default_country_code + digits
    if digits.startswith("0") or not PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_DIGITS:
        return None
    return digits


def sha256_hex(text: str) -> str:
    """Lower-case hex SHA-256 of the UTF-8 text, the form both platforms take."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hashed_email(value: str | None) -> str | None:
    """SHA-256 of the normalised email; None when there is no usable email."""
    email = normalise_email(value)
    return None if email is None else sha256_hex(email)


def hashed_phone(
    value: str | None,
    default_country_code: str | None = CHAIN_COUNTRY,
    *,
    with_plus: bool = False,
) -> str | None:
    """SHA-256 of the normalised phone (Meta's form; `with_plus` for Google's E.164 `+...`)."""
    phone = normalise_phone(value, default_country_code)
    if phone is None:
        return None
    return sha256_hex("+" + phone if with_plus else phone)
