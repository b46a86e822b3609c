"""Configuration: precedence, defaults, TLS, keys and their redaction (no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cosmigrate.config import EMULATOR_KEY, load_config, parse_x_args, redact
from cosmigrate.errors import UsageError


def test_defaults_target_the_local_emulator(tmp_path: Path) -> None:
    config = load_config({}, environ={}, cwd=tmp_path)
    assert config.endpoint == "https://localhost:8081" and config.key == EMULATOR_KEY
    assert config.database == "castiel" and config.history_container == "cosmigrate_history"
    assert config.migrations == tmp_path / "migrations"
    assert (config.lock_ttl, config.lock_timeout) == (60, 300)
    assert config.verify_tls is False  # loopback


def test_flags_override_environment_which_overrides_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[tool.cosmigrate]\ndatabase = "from_toml"\nmigrations = "db/migrations"\nlock_ttl = 30\n'
        'history_container = "toml_history"\n'
    )
    nested = tmp_path / "sub"
    nested.mkdir()
    config = load_config({}, environ={}, cwd=nested)
    assert config.database == "from_toml" and config.lock_ttl == 30 and config.history_container == "toml_history"
    assert config.migrations == tmp_path / "db" / "migrations"  # relative to the pyproject.toml that says it
    env = {"COSMOS_DATABASE": "from_env", "COSMIGRATE_LOCK_TTL": "20"}
    assert load_config({}, environ=env, cwd=nested).database == "from_env"
    flagged = load_config({"database": "from_flag", "lock_ttl": "10"}, environ=env, cwd=nested)
    assert (flagged.database, flagged.lock_ttl) == ("from_flag", 10)


def test_tls_is_verified_for_remote_endpoints_unless_insecure(tmp_path: Path) -> None:
    remote = {"endpoint": "https://acct.documents.azure.com:443/", "key": "k"}
    assert load_config(remote, environ={}, cwd=tmp_path).verify_tls is True
    assert load_config({**remote, "insecure": True}, environ={}, cwd=tmp_path).verify_tls is False
    assert load_config(remote, environ={"COSMIGRATE_INSECURE": "1"}, cwd=tmp_path).verify_tls is False
    for local in ("https://127.0.0.1:8081", "https://[::1]:8081", "https://localhost:1"):
        assert load_config({"endpoint": local}, environ={}, cwd=tmp_path).verify_tls is False


def test_a_remote_endpoint_needs_a_key(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no key for https://acct.example:443/: set COSMOS_KEY"):
        load_config({"endpoint": "https://acct.example:443/"}, environ={}, cwd=tmp_path)


def test_connection_strings(tmp_path: Path) -> None:
    text = "AccountEndpoint=https://acct.example:443/;AccountKey=SECRETKEY==;"
    config = load_config({}, environ={"COSMOS_CONNECTION_STRING": text}, cwd=tmp_path)
    assert (config.endpoint, config.key) == ("https://acct.example:443/", "SECRETKEY==")
    assert "SECRETKEY" not in repr(config)
    for bad in ("AccountKey=SECRETKEY==", "garbage;AccountKey=SECRETKEY=="):
        with pytest.raises(UsageError) as refused:
            load_config({"connection_string": bad}, environ={}, cwd=tmp_path)
        assert "SECRETKEY" not in str(refused.value)


def test_keys_are_refused_in_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.cosmigrate]\nkey = "SECRET"\n')
    with pytest.raises(UsageError, match="do not store 'key' in pyproject.toml"):
        load_config({}, environ={}, cwd=tmp_path)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan"])
def test_bad_lock_ttl(tmp_path: Path, value: str) -> None:
    with pytest.raises(UsageError, match="--lock-ttl must be a number of seconds"):
        load_config({"lock_ttl": value}, environ={}, cwd=tmp_path)


def test_lock_timeout_may_be_zero(tmp_path: Path) -> None:
    assert load_config({"lock_timeout": "0"}, environ={}, cwd=tmp_path).lock_timeout == 0


def test_x_arguments() -> None:
    assert parse_x_args(["force=true", "legacy=a,b", "empty=", "force=false"]) == {
        "force": "false", "legacy": "a,b", "empty": "",
    }  # fmt: skip
    for bad in ("novalue", "=x"):
        with pytest.raises(UsageError, match="-x .* is malformed"):
            parse_x_args([bad])


def test_redact() -> None:
    text = "failed with key abc123 in AccountEndpoint=https://x/;AccountKey=Zm9v+YmFy==;"
    cleaned = redact(text, ("abc123",))
    assert "abc123" not in cleaned and "Zm9v" not in cleaned
    assert "AccountKey=***" in cleaned and "https://x/" in cleaned
