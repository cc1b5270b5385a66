"""Normalised hashing: the platforms' published examples reproduce, and the dbt macros hash
exactly as the Python functions do."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess

import duckdb
import pytest

from regulars.privacy.hashing import (
    hashed_email,
    hashed_phone,
    normalise_email,
    normalise_phone,
    sha256_hex,
)
from regulars.settings import beside_python, load_settings

META_PARAMETERS = (
    "https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/"
    "customer-information-parameters"
)


def test_sha256_hex_is_the_fips_180_2_vector():
    # FIPS 180-2, appendix B.1: SHA-256("abc").
    assert sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_meta_published_email_example():
    # META_PARAMETERS, `em`: input John_Smith@gmail.com, normalised john_smith@gmail.com.
    assert normalise_email("John_Smith@gmail.com") == "john_smith@gmail.com"
    assert (
        hashed_email("John_Smith@gmail.com")
        == "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"
    )


def test_meta_published_phone_example():
    # META_PARAMETERS, `ph`: the US number (650)555-1212, normalised 16505551212.
    assert normalise_phone("(650)555-1212", default_country_code="1") == "16505551212"
    assert (
        hashed_phone("(650)555-1212", default_country_code="1")
        == "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"
    )


def test_google_customer_match_normalisation():
    # Google publishes rules, not hashes: trim and lower-case emails, gmail dots may stay
    # (developers.google.com/google-ads/api/docs/remarketing/audience-types/customer-match);
    # phones hashed in E.164 with the `+` (its Customer Match template's 1-800-888-8888).
    assert normalise_email("  Jane.Doe@GoogleMail.com\t") == "jane.doe@googlemail.com"
    expected = hashlib.sha256(b"+18008888888").hexdigest()
    assert hashed_phone("1-800-888-8888", "1", with_plus=True) == expected


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("0812-3456-7890", "6281234567890"),  # national, trunk 0
        ("+62 812 3456 7890", "6281234567890"),
        ("+62 (812) 3456-7890", "6281234567890"),
        ("0062 812 3456 7890", "6281234567890"),  # international 00 prefix
        ("812.3456.7890", "6281234567890"),  # national without the trunk 0
        ("6281234567890", "6281234567890"),
        ("  0812/3456/7890 ", "6281234567890"),
    ],
)
def test_indonesian_numbers_become_62_digits(written, normalised, monkeypatch):
    assert normalise_phone(written, default_country_code="62") == normalised
    monkeypatch.setenv("CHAIN__COUNTRY", "ID")  # the chain's country is the default
    assert normalise_phone(written) == normalised


def test_a_pos_member_phone_hashes_as_the_customers_phone(monkeypatch):
    # Order history keeps the local 08... form, the ordering platform +62...: one guest, one hash.
    monkeypatch.setenv("CHAIN__COUNTRY", "ID")
    assert hashed_phone("083910713880") == hashed_phone("+6283910713880") is not None


def test_without_a_chain_country_only_numbers_that_carry_their_code_are_phones(monkeypatch):
    """A US chain's `(650) 555-1212` is 1650..., not 62650...; with no country set, a national
    number matches nothing rather than someone in another country."""
    monkeypatch.setenv("CHAIN__COUNTRY", "US")
    assert normalise_phone("(650)555-1212") == "16505551212"
    monkeypatch.setenv("CHAIN__COUNTRY", "")
    assert normalise_phone("(650)555-1212") is None
    assert normalise_phone("0812-3456-7890") is None
    assert normalise_phone("+62 812 3456 7890") == normalise_phone("0062 812 3456 7890")
    assert normalise_phone("+62 812 3456 7890") == "6281234567890"


@pytest.mark.parametrize("junk", [None, "", "   ", "abc", "0812 ext 5", "+0812", "08-12", "1" * 16])
def test_what_is_not_a_phone_number_hashes_to_none(junk):
    assert normalise_phone(junk) is None
    assert hashed_phone(junk) is None


@pytest.mark.parametrize("junk", [None, "", "  ", "no-at-sign", "two@@x.com", "a@b", "a b@c.com"])
def test_what_is_not_an_email_hashes_to_none(junk):
    assert normalise_email(junk) is None
    assert hashed_email(junk) is None


# Every value both sides must agree on: the examples, edge cases of whitespace, case and
# separators, and junk each side must turn into null.
INPUTS = [
    "John_Smith@gmail.com",
    "  Jane.Doe@GoogleMail.com\t",
    "\nbudi.hakim786@yahoo.com \r\n",
    "\u00a0nbsp@example.com",  # a non-breaking space is not whitespace to either side
    "ÉLODIE@Example.FR",
    "user+tag@gmail.com",
    "no-at-sign",
    "two@@x.com",
    "a@b",
    "a b@c.com",
    "0812-3456-7890",
    "+62 812 3456 7890",
    "+62 (812) 3456-7890",
    "6281234567890",
    "0062 812 3456 7890",
    "812.3456.7890",
    "083910713880",
    "+6289893878606",
    "(650)555-1212",
    "+1 650 555 1212",
    "  0812/3456/7890 ",
    "\v0812 3456 7890\f",
    "+0812",
    "0812 ext 5",
    "08-12",
    "1234567890123456",
    "abc",
    "",
    "   ",
    None,
]


@pytest.fixture(scope="module")
def macro_sql(tmp_path_factory) -> str:
    """The macros rendered by dbt itself, as one select over a table `pii_inputs(value)`."""
    settings = load_settings()
    scratch = tmp_path_factory.mktemp("pii_macros")
    query = (
        "select value, "
        "{{ normalised_email('value') }} as email, {{ hashed_email('value') }} as email_hash, "
        "{{ normalised_phone('value') }} as phone, {{ hashed_phone('value') }} as phone_hash, "
        "{{ hashed_phone('value', '1') }} as phone_hash_us "
        "from pii_inputs"
    )
    # An empty scratch warehouse: compiling needs a connection, not the real warehouse.
    env = os.environ | {"REGULARS_WAREHOUSE": str(scratch / "scratch.duckdb")}
    result = subprocess.run(
        [
            beside_python("dbt"),
            "compile",
            "--inline",
            query,
            "--output",
            "json",
            "--quiet",
            # The Indonesian chain's calling code, as the dbt assets pass `[chain] country = ID`.
            "--vars",
            json.dumps({"chain_phone_country_code": "62"}),
            "--target-path",
            str(scratch / "target"),
            "--log-path",
            str(scratch / "logs"),
        ],
        cwd=settings.dbt_project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)["compiled"]


def test_sql_macros_match_python_byte_for_byte(macro_sql, monkeypatch):
    monkeypatch.setenv("CHAIN__COUNTRY", "ID")
    connection = duckdb.connect()
    connection.execute("create table pii_inputs (position integer, value varchar)")
    connection.executemany("insert into pii_inputs values (?, ?)", list(enumerate(INPUTS)))
    rendered = macro_sql.replace("select value,", "select position, value,", 1)
    rows = connection.execute(f"select * from ({rendered}) order by position").fetchall()
    assert [row[1] for row in rows] == INPUTS
    for position, value, *sql in rows:
        python = [
            normalise_email(value),
            hashed_email(value),
            normalise_phone(value),
            hashed_phone(value),
            hashed_phone(value, "1"),
        ]
        assert sql == python, f"SQL and Python differ on input {position}, {value!r}"
    # Not vacuous: real hashes on both sides, and nulls.
    assert sum(row[3] is not None for row in rows) >= 6
    assert sum(row[5] is not None for row in rows) >= 10
    assert sum(row[5] is None for row in rows) >= 6
