"""No credential is committed, and the collector's write keys are stored hashed.

Credentials reach Regulars only through dlt secrets (`.dlt/secrets.toml`, git-ignored) or
environment variables. The scan uses Yelp's detect-secrets on every file git tracks or would add
(`git ls-files --cached --others --exclude-standard`), so a secret is caught before its commit.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest
from detect_secrets import SecretsCollection
from detect_secrets.settings import default_settings, get_settings

from ingestion.collector.settings import CollectorSettings, hash_write_key

CHECKOUT = Path(__file__).resolve().parent.parent
# Hex digests are this project's data (normalised hashes, published SHA-256 test vectors, dbt
# surrogate keys): entropy cannot tell them from a hex token, so that detector only adds noise.
# Keyword, Base64-entropy and the vendor-format detectors (AWS, GitHub, Slack, private keys,
# JWTs, URLs with a password ...) stay on.
NOISY_PLUGINS = {"HexHighEntropyString"}
# Documented placeholders, e.g. `.dlt/secrets.toml.example` and error messages that show the
# shape of a setting.
PLACEHOLDER = re.compile(r"CHANGE_ME|^<.*>$|^\.\.\.$|^…$|^password$|^x+$", re.IGNORECASE)


def git_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=CHECKOUT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [name for name in listed.split("\0") if name and (CHECKOUT / name).is_file()]


def is_alphabet(value: str) -> bool:
    """A charset spelled out in order (a base32 alphabet), not a secret."""
    return len(value) >= 16 and list(value) == sorted(set(value))


def test_no_secret_looking_value_is_committed(monkeypatch):
    monkeypatch.chdir(CHECKOUT)
    files = git_files()
    assert len(files) > 100, "git listed too few files: is this a checkout?"
    found = SecretsCollection()
    with default_settings():
        settings = get_settings()
        for plugin in NOISY_PLUGINS:
            settings.disable_plugins(plugin)
        # File by file in this process: scan_files forks a pool even for one process, and a
        # forked child of a test process holding DuckDB connections can crash on their cleanup.
        for name in files:
            found.scan_file(name)
    leaks = [
        f"{name}:{secret.line_number} {secret.type}"
        for name, secrets in found.data.items()
        for secret in secrets
        if not PLACEHOLDER.search(secret.secret_value or "")
        and not is_alphabet(secret.secret_value or "")
    ]
    assert not leaks, (
        "Secret-looking values in files git tracks: move them to .dlt/secrets.toml or an "
        "environment variable (or, for a false positive, end the line with "
        f"`# pragma: allowlist secret`): {leaks}"
    )


def test_the_scan_finds_a_planted_secret(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    planted = tmp_path / "settings.py"
    # Assembled at run time so this file does not hold the value it plants.
    key = "AKIA" + "Z7Q3" * 4
    planted.write_text(f'aws_access_key_id = "{key}"\ndb = "postgresql://app:{key}@db:5432/x"\n')
    found = SecretsCollection()
    with default_settings():
        found.scan_file(str(planted))
    types = {secret.type for secrets in found.data.values() for secret in secrets}
    assert {"AWS Access Key", "Basic Auth Credentials"} <= types


def test_dlt_secrets_file_is_ignored_by_git():
    ignored = subprocess.run(["git", "check-ignore", "-q", ".dlt/secrets.toml"], cwd=CHECKOUT)
    assert ignored.returncode == 0, ".dlt/secrets.toml is not git-ignored"
    assert not [name for name in git_files() if Path(name).name in ("secrets.toml", ".env")]


# The collector ---------------------------------------------------------------------------------


def collector_settings(tmp_path: Path, keys: dict[str, str]) -> CollectorSettings:
    return CollectorSettings(landing_url=str(tmp_path), spool_dir=tmp_path, write_keys=keys)


def test_write_keys_are_configured_and_kept_as_hashes(tmp_path):
    key = "a-write-key"
    stored = hash_write_key(key)
    assert stored == "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    settings = collector_settings(tmp_path, {"web": stored, "server": hash_write_key("other")})
    assert settings.source_for(key) == "web"
    assert settings.source_for("other") == "server"
    assert settings.source_for("a-write-key ") is None
    assert settings.source_for("") is None
    assert key not in repr(settings) and key not in repr(vars(settings))


def test_a_plain_text_key_in_config_is_refused_without_echoing_it(tmp_path):
    with pytest.raises(ValueError, match="not a key hash") as refused:
        collector_settings(tmp_path, {"web": "my-plain-key"})
    assert "my-plain-key" not in str(refused.value)
    with pytest.raises(ValueError, match="not a key hash"):
        collector_settings(tmp_path, {"web": "sha256:abc"})


def test_two_sources_cannot_share_a_key(tmp_path):
    with pytest.raises(ValueError, match="share a key"):
        collector_settings(tmp_path, {"web": hash_write_key("k"), "app": hash_write_key("k")})


def test_dev_keys_are_hashed_once_loaded(tmp_path, monkeypatch):
    from ingestion.collector.settings import dev_write_keys, load_collector_settings
    from regulars.settings import load_settings

    monkeypatch.setenv("REGULARS_STATE_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("COLLECTOR__WRITE_KEYS", raising=False)
    settings = load_collector_settings(load_settings())
    keys = dev_write_keys(settings.dev_keys_file)
    assert set(settings.write_keys) == set(keys)
    for source, key in keys.items():
        assert settings.write_keys[source] == hash_write_key(key)
        assert settings.source_for(key) == source
