"""Configuration: defaults, precedence, TLS, keys and their redaction (no database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cosmigrate.config import EMULATOR_KEY, Config, load_config, parse_x_args, redact
from cosmigrate.errors import UsageError

REMOTE = "https://acct.documents.azure.com:443/"
SECRET = "U0VDUkVUS0VZ+c2VjcmV0a2V5/Zm9vYmFy=="


def pyproject(folder: Path, body: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(f'[project]\nname = "app"\n\n[tool.cosmigrate]\n{body}\n', encoding="utf-8")
    return path


def config(tmp_path: Path, flags: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> Config:
    return load_config(flags or {}, environ=env or {}, cwd=tmp_path)


def refused(tmp_path: Path, flags: dict[str, Any] | None = None, env: dict[str, str] | None = None) -> str:
    """The message of the UsageError that loading this configuration raises."""
    with pytest.raises(UsageError) as error:
        config(tmp_path, flags, env)
    assert error.value.exit_code == 2
    return str(error.value)


# defaults


def test_defaults_target_the_local_emulator(tmp_path: Path) -> None:
    loaded = config(tmp_path)
    assert loaded.endpoint == "https://localhost:8081"
    assert loaded.key == EMULATOR_KEY
    assert loaded.key.startswith("C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw")
    assert loaded.database is None  # no tool-wide default: a command that needs one asks for it
    assert loaded.history_container == "cosmigrate_history"
    assert loaded.migrations == tmp_path / "migrations"
    assert loaded.lock_ttl == 60 and loaded.lock_timeout == 300 and loaded.index_timeout == 3600
    assert loaded.verify_tls is False  # the emulator's certificate is self-signed
    assert dict(loaded.x) == {}


def test_the_environment_of_the_process_is_not_read_when_one_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSMOS_DATABASE", "from_process")
    assert config(tmp_path).database is None
    assert load_config({}, cwd=tmp_path).database == "from_process"  # environ=None: os.environ


# precedence: flags > environment > [tool.cosmigrate] > defaults

# setting, environment variable, (pyproject value as TOML, environment value, flag value), attribute, expected values
LAYERS = [
    ("database", "COSMOS_DATABASE", ('"toml_db"', "env_db", "flag_db"), "database", ("toml_db", "env_db", "flag_db")),
    (
        "history_container",
        "COSMIGRATE_HISTORY_CONTAINER",
        ('"toml_h"', "env_h", "flag_h"),
        "history_container",
        ("toml_h", "env_h", "flag_h"),
    ),
    (
        "endpoint",
        "COSMOS_ENDPOINT",
        ('"https://localhost:1/"', "https://localhost:2/", "https://localhost:3/"),
        "endpoint",
        ("https://localhost:1/", "https://localhost:2/", "https://localhost:3/"),
    ),
    ("lock_ttl", "COSMIGRATE_LOCK_TTL", ("30", "20", "10"), "lock_ttl", (30.0, 20.0, 10.0)),
    ("lock_timeout", "COSMIGRATE_LOCK_TIMEOUT", ("33", "22", "11"), "lock_timeout", (33.0, 22.0, 11.0)),
    ("index_timeout", "COSMIGRATE_INDEX_TIMEOUT", ("7.5", "8", "9"), "index_timeout", (7.5, 8.0, 9.0)),
]


@pytest.mark.parametrize(("name", "variable", "values", "attribute", "expected"), LAYERS, ids=[r[0] for r in LAYERS])
def test_flags_override_environment_which_overrides_pyproject(
    tmp_path: Path, name: str, variable: str, values: tuple[str, str, str], attribute: str, expected: tuple[Any, ...]
) -> None:
    toml_value, env_value, flag_value = values
    default = getattr(config(tmp_path), attribute)
    pyproject(tmp_path, f"{name} = {toml_value}")
    env = {variable: env_value}
    assert getattr(config(tmp_path), attribute) == expected[0] != default
    assert getattr(config(tmp_path, env=env), attribute) == expected[1]
    assert getattr(config(tmp_path, {name: flag_value}, env), attribute) == expected[2]
    assert getattr(config(tmp_path, {name: flag_value}), attribute) == expected[2]


def test_empty_flags_and_variables_fall_through_to_the_next_layer(tmp_path: Path) -> None:
    pyproject(tmp_path, 'database = "toml_db"')
    assert config(tmp_path, {"database": None}, {"COSMOS_DATABASE": ""}).database == "toml_db"
    assert config(tmp_path, {"database": ""}, {"COSMOS_DATABASE": "env_db"}).database == "env_db"


def test_the_nearest_pyproject_above_the_working_directory_is_used(tmp_path: Path) -> None:
    pyproject(tmp_path, 'database = "outer"')
    inner = tmp_path / "service"
    (inner / "src").mkdir(parents=True)
    pyproject(inner, 'database = "inner"')
    assert config(inner / "src").database == "inner"
    assert config(tmp_path).database == "outer"


def test_a_pyproject_without_a_cosmigrate_table_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n', encoding="utf-8")
    assert config(tmp_path).database is None


def test_an_invalid_pyproject_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.cosmigrate\n", encoding="utf-8")
    assert "pyproject.toml is not valid TOML" in refused(tmp_path)


# the migrations folder


def test_migrations_from_pyproject_are_relative_to_that_file(tmp_path: Path) -> None:
    pyproject(tmp_path, 'migrations = "db/migrations"')
    nested = tmp_path / "sub" / "deeper"
    nested.mkdir(parents=True)
    assert config(nested).migrations == tmp_path / "db" / "migrations"


def test_migrations_from_flags_and_environment_are_relative_to_the_working_directory(tmp_path: Path) -> None:
    pyproject(tmp_path, 'migrations = "db/migrations"')
    nested = tmp_path / "sub"
    nested.mkdir()
    assert config(nested, env={"COSMIGRATE_MIGRATIONS": "env_m"}).migrations == nested / "env_m"
    assert config(nested, {"migrations": "flag_m"}).migrations == nested / "flag_m"


def test_an_absolute_migrations_path_is_kept(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    pyproject(tmp_path, f"migrations = {str(elsewhere)!r}")
    assert config(tmp_path).migrations == elsewhere
    assert config(tmp_path, {"migrations": str(elsewhere / "f")}).migrations == elsewhere / "f"


# TLS


@pytest.mark.parametrize(
    "endpoint",
    ["https://localhost:8081", "https://localhost:1/", "https://127.0.0.1:8081/", "https://[::1]:8081/"],
)
def test_tls_is_not_verified_for_loopback_endpoints(tmp_path: Path, endpoint: str) -> None:
    loaded = config(tmp_path, {"endpoint": endpoint})
    assert loaded.verify_tls is False
    assert loaded.key == EMULATOR_KEY  # and the emulator key is used without asking


def test_tls_is_verified_for_a_remote_endpoint(tmp_path: Path) -> None:
    assert config(tmp_path, {"endpoint": REMOTE, "key": SECRET}).verify_tls is True


@pytest.mark.parametrize(
    ("flags", "env", "toml"),
    [
        ({"insecure": True}, {}, ""),
        ({}, {"COSMIGRATE_INSECURE": "1"}, ""),
        ({}, {"COSMIGRATE_INSECURE": "true"}, ""),
        ({}, {}, "insecure = true"),
    ],
    ids=["flag", "env 1", "env true", "pyproject"],
)
def test_insecure_turns_tls_verification_off(
    tmp_path: Path, flags: dict[str, Any], env: dict[str, str], toml: str
) -> None:
    pyproject(tmp_path, toml)
    assert config(tmp_path, {"endpoint": REMOTE, "key": SECRET, **flags}, env).verify_tls is False


@pytest.mark.parametrize("value", ["0", "false", "no", "off"])
def test_insecure_false_keeps_tls_verification(tmp_path: Path, value: str) -> None:
    assert config(tmp_path, {"endpoint": REMOTE, "key": SECRET}, {"COSMIGRATE_INSECURE": value}).verify_tls is True


def test_a_bad_insecure_value_is_refused(tmp_path: Path) -> None:
    assert "COSMIGRATE_INSECURE must be true or false, not 'maybe'" in refused(
        tmp_path, env={"COSMIGRATE_INSECURE": "maybe"}
    )


# keys


def test_a_remote_endpoint_needs_a_key(tmp_path: Path) -> None:
    message = refused(tmp_path, {"endpoint": REMOTE})
    assert message.startswith(f"no key for {REMOTE}")
    assert "COSMOS_KEY" in message and EMULATOR_KEY not in message


@pytest.mark.parametrize("where", ["flag", "env"])
def test_a_remote_endpoint_with_a_key(tmp_path: Path, where: str) -> None:
    if where == "flag":
        loaded = config(tmp_path, {"endpoint": REMOTE, "key": SECRET})
    else:
        loaded = config(tmp_path, env={"COSMOS_ENDPOINT": REMOTE, "COSMOS_KEY": SECRET})
    assert (loaded.endpoint, loaded.key) == (REMOTE, SECRET)


@pytest.mark.parametrize("name", ["key", "connection_string"])
def test_keys_are_refused_in_pyproject(tmp_path: Path, name: str) -> None:
    path = pyproject(tmp_path, f'{name} = "AccountEndpoint={REMOTE};AccountKey={SECRET}"')
    message = refused(tmp_path)
    assert message.startswith(f"{path}: do not store '{name}' in pyproject.toml")
    assert SECRET not in message


@pytest.mark.parametrize(
    ("flags", "env"),
    [({"key": "other"}, {}), ({}, {"COSMOS_KEY": "other"})],
    ids=["key flag given", "COSMOS_KEY set"],
)
def test_a_key_in_pyproject_is_refused_even_when_another_key_is_given(
    tmp_path: Path, flags: dict[str, Any], env: dict[str, str]
) -> None:
    """ "Keys cannot be stored in pyproject.toml" (README): a key committed to the repository is refused on every
    run, not only on the runs that happen to lack COSMOS_KEY (CI sets it and would never notice)."""
    pyproject(tmp_path, f'key = "{SECRET}"')
    assert "do not store 'key' in pyproject.toml" in refused(tmp_path, flags, env)


def test_repr_does_not_show_the_key(tmp_path: Path) -> None:
    remote = config(tmp_path, {"endpoint": REMOTE, "key": SECRET})
    assert SECRET not in repr(remote) and SECRET not in str(remote)
    assert REMOTE in repr(remote)  # the rest is still shown
    assert EMULATOR_KEY not in repr(config(tmp_path))


# connection strings


@pytest.mark.parametrize("where", ["flag", "env"])
def test_a_connection_string_gives_endpoint_and_key(tmp_path: Path, where: str) -> None:
    text = f"AccountEndpoint={REMOTE};AccountKey={SECRET};"
    if where == "flag":
        loaded = config(tmp_path, {"connection_string": text})
    else:
        loaded = config(tmp_path, env={"COSMOS_CONNECTION_STRING": text})
    assert (loaded.endpoint, loaded.key) == (REMOTE, SECRET)
    assert loaded.verify_tls is True
    assert SECRET not in repr(loaded)


def test_connection_string_names_are_case_insensitive_and_spaces_trimmed(tmp_path: Path) -> None:
    loaded = config(tmp_path, {"connection_string": f" accountendpoint = {REMOTE} ; ACCOUNTKEY={SECRET}"})
    assert (loaded.endpoint, loaded.key) == (REMOTE, SECRET)


def test_a_connection_string_in_the_environment_overrides_an_endpoint_in_pyproject(tmp_path: Path) -> None:
    """flags > environment > pyproject: the environment's connection string names its endpoint; sending its key
    to the (lower-precedence) endpoint of pyproject.toml would pair one account's key with another's address."""
    pyproject(tmp_path, 'endpoint = "https://dev.documents.azure.com:443/"')
    loaded = config(tmp_path, env={"COSMOS_CONNECTION_STRING": f"AccountEndpoint={REMOTE};AccountKey={SECRET}"})
    assert (loaded.endpoint, loaded.key) == (REMOTE, SECRET)


@pytest.mark.parametrize(
    "text",
    [
        f"AccountKey={SECRET}",
        f"AccountEndpoint={REMOTE}",
        f"garbage;AccountKey={SECRET}",
        f"AccountEndpoint={REMOTE};{SECRET.rstrip('=')}",
        f"AccountEndpoint={REMOTE};AccountKey=",
        SECRET.rstrip("="),
        f"AccountEndpoint=ftp://acct;AccountKey={SECRET}",
        f"AccountEndpoint=not a url;AccountKey={SECRET}",
    ],
    ids=["no endpoint", "no key", "a piece without =", "bare key piece", "empty key", "only a key", "ftp", "not url"],
)
def test_a_malformed_connection_string_is_refused_without_quoting_the_key(tmp_path: Path, text: str) -> None:
    for flags, env in (({"connection_string": text}, {}), ({}, {"COSMOS_CONNECTION_STRING": text})):
        message = refused(tmp_path, flags, env)
        assert SECRET.rstrip("=") not in message and "U0VDUkVU" not in message
        assert "connection string" in message or "endpoint" in message


# numbers


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", 0, -5.0])
def test_a_bad_lock_ttl_is_refused_naming_where_it_came_from(tmp_path: Path, value: Any) -> None:
    assert "--lock-ttl must be a number of seconds" in refused(tmp_path, {"lock_ttl": value})
    assert "COSMIGRATE_LOCK_TTL must be a number of seconds" in refused(
        tmp_path, env={"COSMIGRATE_LOCK_TTL": str(value)}
    )
    pyproject(tmp_path, f"lock_ttl = {value!r}".replace("'", '"'))
    assert "[tool.cosmigrate] lock_ttl must be a number of seconds" in refused(tmp_path)


def test_an_infinite_lock_ttl_is_refused(tmp_path: Path) -> None:
    """A lock that never expires defeats "a crashed holder blocks others for at most --lock-ttl" (README), and
    taking it fails outside cosmigrate's errors: history.now_iso(now + inf) raises OverflowError."""
    assert "--lock-ttl must be a number of seconds" in refused(tmp_path, {"lock_ttl": "inf"})


@pytest.mark.parametrize("value", ["0", 0])
def test_a_lock_timeout_of_zero_is_allowed(tmp_path: Path, value: Any) -> None:
    assert config(tmp_path, {"lock_timeout": value}).lock_timeout == 0


@pytest.mark.parametrize(("name", "flag"), [("lock_timeout", "--lock-timeout"), ("index_timeout", "--index-timeout")])
def test_other_bad_durations_are_refused(tmp_path: Path, name: str, flag: str) -> None:
    assert f"{flag} must be a number of seconds" in refused(tmp_path, {name: "-1"})
    assert f"{flag} must be a number of seconds" in refused(tmp_path, {name: "soon"})


def test_an_index_timeout_of_zero_is_refused(tmp_path: Path) -> None:
    assert "--index-timeout must be a number of seconds greater than 0" in refused(tmp_path, {"index_timeout": "0"})


# names


@pytest.mark.parametrize("value", ["a/b", "a\\b", "what?", "a#b", "x" * 256])
def test_invalid_database_and_history_names_are_refused(tmp_path: Path, value: str) -> None:
    assert "database name" in refused(tmp_path, {"database": value})
    assert "history container name" in refused(tmp_path, {"history_container": value})


@pytest.mark.parametrize("endpoint", ["localhost:8081", "ftp://localhost/", "https://", "acct.documents.azure.com"])
def test_an_endpoint_that_is_not_a_url_is_refused(tmp_path: Path, endpoint: str) -> None:
    assert "is not a URL like https://account:443/" in refused(tmp_path, {"endpoint": endpoint, "key": SECRET})


# -x arguments


def test_x_arguments() -> None:
    assert parse_x_args(["force=true", "legacy=a,b", "empty=", "expr=a=b", " spaced =v", "force=false"]) == {
        "force": "false", "legacy": "a,b", "empty": "", "expr": "a=b", "spaced": "v",
    }  # fmt: skip
    assert parse_x_args(()) == {}


def test_x_arguments_reach_the_config(tmp_path: Path) -> None:
    loaded = load_config({}, environ={}, cwd=tmp_path, x=parse_x_args(["force=true"]))
    assert dict(loaded.x) == {"force": "true"}


@pytest.mark.parametrize("bad", ["novalue", "=x", " =x", ""])
def test_malformed_x_arguments_are_refused(bad: str) -> None:
    with pytest.raises(UsageError, match=r"-x .* is malformed: write -x key=value") as error:
        parse_x_args(["ok=1", bad])
    assert repr(bad) in str(error.value)


# redaction


def test_redact_removes_the_given_secrets() -> None:
    cleaned = redact(f"failed with {SECRET} twice: {SECRET}", (SECRET, "other"))
    assert SECRET not in cleaned and cleaned == "failed with *** twice: ***"


def test_redact_removes_any_account_key_value() -> None:
    text = f"bad AccountEndpoint=https://x/;AccountKey={SECRET}; and accountkey = abc123 and 'AccountKey=q1w2'"
    cleaned = redact(text)
    assert SECRET not in cleaned and "abc123" not in cleaned and "q1w2" not in cleaned
    assert "AccountKey=***;" in cleaned and "accountkey = ***" in cleaned and "'AccountKey=***'" in cleaned
    assert "AccountEndpoint=https://x/" in cleaned


def test_redact_ignores_empty_secrets_and_leaves_other_text() -> None:
    assert redact("nothing secret here", ("",)) == "nothing secret here"


def test_config_redacts_its_own_key(tmp_path: Path) -> None:
    loaded = config(tmp_path, {"endpoint": REMOTE, "key": SECRET})
    assert loaded.redact(f"401 for key {SECRET}") == "401 for key ***"
