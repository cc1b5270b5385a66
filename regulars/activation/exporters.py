"""What each channel receives, as records: a member key (a hash, what the diff and the log keep)
and the fields of the destination's file. Pure functions; `write_file` is the only I/O
(owner-only files, `retention`).

- meta: the customer-list CSV Meta's Custom Audiences take, `email,phone`, each the SHA-256 of the
  normalised value (regulars.privacy.hashing); a guest with neither is unmatchable and left out.
- email / sms: the provider's CSV, the raw address or E.164 number (`+62...`) and the first name,
  which the provider needs to send; a guest without a usable address / number is left out.
- push: a JSON list of external user ids (the ordering platform's customer id the app logs in with).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from regulars.activation.config import Channel
from regulars.activation.retention import open_owner_only
from regulars.activation.selection import Member
from regulars.privacy.hashing import (
    hashed_email,
    hashed_phone,
    normalise_email,
    normalise_phone,
    sha256_hex,
)

FILE_HEADERS = {
    "meta": ("email", "phone"),
    "email": ("email", "first_name"),
    "sms": ("phone", "first_name"),
}
SUFFIX = {"meta": "csv", "email": "csv", "sms": "csv", "push": "json"}


class ConsentViolation(AssertionError):
    """A guest without the channel's consent reached an exporter: selection let them through."""


@dataclass(frozen=True)
class Record:
    key: str  # SHA-256 hex identifying the member at the destination
    fields: tuple[str, ...]  # the file row
    email_sha256: str | None = None
    phone_sha256: str | None = None


def assert_consent(channel: Channel, members: Iterable[Member]) -> None:
    """Defence in depth: selection filters on consent in SQL; refuse to export if it did not."""
    refused = [m.customer_id for m in members if not channel.consent.holds(m.consent)]
    if refused:
        raise ConsentViolation(
            f"{len(refused)} guests without {channel.name} consent reached the {channel.name} "
            f"exporter (customer ids {refused[:5]}...); nothing was exported."
        )


def records(channel: Channel, members: list[Member]) -> list[Record]:
    """The channel's records for these members, one per destination identity, in a stable order."""
    assert_consent(channel, members)
    build = {"meta": _meta, "email": _email, "sms": _sms, "push": _push}[channel.name]
    unique: dict[str, Record] = {}
    for member in members:
        record = build(member)
        if record is not None:
            unique.setdefault(record.key, record)
    return sorted(unique.values(), key=lambda r: r.key)


def _first_name(member: Member) -> str:
    return (member.full_name or "").strip().split(" ")[0] if member.full_name else ""


def _meta(member: Member) -> Record | None:
    email, phone = hashed_email(member.email), hashed_phone(member.phone)
    if email is None and phone is None:
        return None
    fields = (email or "", phone or "")
    return Record(sha256_hex(",".join(fields)), fields, email, phone)


def _email(member: Member) -> Record | None:
    email = normalise_email(member.email)
    if email is None:
        return None
    return Record(sha256_hex(email), (email, _first_name(member)), email_sha256=sha256_hex(email))


def _sms(member: Member) -> Record | None:
    phone = normalise_phone(member.phone)
    if phone is None:
        return None
    digest = sha256_hex(phone)
    return Record(digest, ("+" + phone, _first_name(member)), phone_sha256=digest)


def _push(member: Member) -> Record:
    external_id = str(member.customer_id)
    return Record(sha256_hex(f"push:{external_id}"), (external_id,))


def write_file(path: Path, channel: str, rows: list[Record], root: Path) -> Path:
    """The channel's file at `path`, owner-only (`root`: the exports folder, narrowed too)."""
    if channel == "push":
        with open_owner_only(path, root) as handle:
            handle.write(json.dumps([r.fields[0] for r in rows], indent=0) + "\n")
        return path
    with open_owner_only(path, root, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(FILE_HEADERS[channel])
        writer.writerows(r.fields for r in rows)
    return path
