"""Configuration from the environment: what an operator sets and what the service makes of it."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from market_ledger.adapters.config import ConfigurationError, Settings
from market_ledger.adapters.nats.connection import display_url


def test_given_nats_host_and_port_then_the_url_is_built_from_them() -> None:
    settings = Settings.from_env({"NATS_HOST": "nats.internal", "NATS_PORT": "4333"})
    assert settings.nats_url == "nats://nats.internal:4333"


def test_given_nats_username_and_password_then_the_connection_url_carries_them() -> None:
    settings = Settings.from_env(
        {"NATS_HOST": "nats.internal", "NATS_USERNAME": "ledger", "NATS_PASSWORD": "p@ss:w/rd"}
    )
    assert settings.nats_url is not None
    parts = urlsplit(settings.nats_url)
    assert (parts.hostname, parts.port) == ("nats.internal", 4222)
    assert parts.username == "ledger" and parts.password == "p%40ss%3Aw%2Frd"
    # what the logs show of it
    assert display_url(settings.nats_url) == "nats://nats.internal:4222"


@pytest.mark.parametrize(
    "env",
    [
        {"NATS_URL": "nats://nats.internal:4222", "NATS_USERNAME": "only-a-name"},
        {"NATS_URL": "nats://nats.internal:4222", "NATS_PASSWORD": "only-a-password"},
    ],
)
def test_given_only_half_of_the_credentials_then_none_are_used(env: dict[str, str]) -> None:
    assert Settings.from_env(env).nats_url == "nats://nats.internal:4222"


def test_given_a_url_with_credentials_of_its_own_then_they_win() -> None:
    settings = Settings.from_env(
        {
            "NATS_URL": "nats://own:secret@nats.internal:4222",
            "NATS_USERNAME": "other",
            "NATS_PASSWORD": "other-secret",
        }
    )
    assert settings.nats_url == "nats://own:secret@nats.internal:4222"


def test_given_settings_with_credentials_then_their_text_does_not_show_the_passwords() -> None:
    settings = Settings.from_env(
        {
            "LEDGER_DATABASE_URL": "postgresql://ledger:db-s3cret@db/ledger",
            "NATS_HOST": "nats.internal",
            "NATS_USERNAME": "ledger",
            "NATS_PASSWORD": "nats-s3cret",
        }
    )
    for text in (repr(settings), str(settings)):
        assert "db-s3cret" not in text and "nats-s3cret" not in text
        assert "nats.internal" in text and "db/ledger" in text


def test_given_the_repo_url_host_and_port_then_the_repo_url_is_built_from_them() -> None:
    settings = Settings.from_env(
        {"REPO_URL_HOST": "chart-repo-service.os-framework", "REPO_URL_PORT": "82"}
    )
    assert settings.repo_url == "http://chart-repo-service.os-framework:82/"


def test_given_only_the_repo_url_host_then_the_repo_url_has_no_port() -> None:
    assert (
        Settings.from_env({"REPO_URL_HOST": "charts.internal"}).repo_url
        == "http://charts.internal/"
    )


def test_given_no_repo_url_host_then_there_is_no_repo_url() -> None:
    assert Settings.from_env({"REPO_URL_PORT": "82"}).repo_url is None


def test_given_nothing_set_then_a_task_call_to_app_service_may_take_60_seconds() -> None:
    assert Settings.from_env({}).task_http_timeout == 60.0


def test_given_a_task_http_timeout_then_it_is_taken_in_seconds() -> None:
    assert Settings.from_env({"LEDGER_TASK_HTTP_TIMEOUT": "2.5"}).task_http_timeout == 2.5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEDGER_TASK_HTTP_TIMEOUT", "soon"),
        ("LEDGER_TASK_HTTP_TIMEOUT", "0"),
        ("REPO_URL_PORT", "eighty-two"),
        ("REPO_URL_PORT", "0"),
        ("REPO_URL_PORT", "8.5"),
    ],
)
def test_given_an_unusable_task_setting_then_the_error_names_the_variable(
    variable: str, value: str
) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: value})


def test_given_no_instance_id_then_it_is_the_host_and_the_process() -> None:
    settings = Settings.from_env({})
    host, _, pid = settings.instance_id.rpartition(":")
    assert host and pid == str(os.getpid())


def test_given_an_instance_id_then_it_names_the_instance() -> None:
    assert Settings.from_env({"LEDGER_INSTANCE_ID": " replica-2 "}).instance_id == "replica-2"


def test_given_an_unprintable_instance_id_then_it_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_INSTANCE_ID"):
        Settings.from_env({"LEDGER_INSTANCE_ID": "a\x00b"})


def test_given_nothing_set_then_checkpoints_are_taken_every_10000_positions() -> None:
    assert Settings.from_env({}).checkpoint_every == 10_000


def test_given_a_checkpoint_interval_then_it_is_taken_in_positions() -> None:
    assert Settings.from_env({"LEDGER_CHECKPOINT_EVERY": " 500 "}).checkpoint_every == 500


@pytest.mark.parametrize("value", ["often", "0", "-3", "2.5"])
def test_given_an_unusable_checkpoint_interval_then_the_error_names_the_variable(
    value: str,
) -> None:
    with pytest.raises(ConfigurationError, match=f"LEDGER_CHECKPOINT_EVERY={value!r}"):
        Settings.from_env({"LEDGER_CHECKPOINT_EVERY": value})
