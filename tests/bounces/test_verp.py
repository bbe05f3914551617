"""VERP tokens (SPEC §10): a delivery's own envelope sender, verifiable only with the key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.config.settings import load_settings, return_path_problem
from jobs.errors import ConfigError
from jobs.messages.verp import (
    ReturnPath,
    parse_token,
    token_verifies,
    verp_token,
)

KEY = b"a-test-key-of-32-bytes-0123456789"
TEMPLATE = "bounce+{token}@mailer.smileworks.example.jp"


@given(st.integers(min_value=0, max_value=2**63 - 1), st.text(min_size=1, max_size=60))
def test_tokens_round_trip(delivery_id: int, message_id: str) -> None:
    token = verp_token(KEY, delivery_id, message_id)
    parsed = parse_token(token)
    assert parsed is not None and parsed[0] == delivery_id
    assert token_verifies(KEY, token, delivery_id, message_id)
    assert token_verifies(KEY, token.upper(), delivery_id, message_id)  # MTAs may fold case
    assert not token_verifies(b"another-key-another-key-another", token, delivery_id, message_id)
    assert not token_verifies(KEY, token, delivery_id + 1, message_id)


def test_the_address_carries_the_token_and_gives_it_back() -> None:
    path = ReturnPath(TEMPLATE, KEY)
    address = path.for_delivery(1234, "<abc@mailer.smileworks.example.jp>")
    assert address.startswith("bounce+ya-") and address.endswith("@mailer.smileworks.example.jp")
    assert len(address.split("@")[0]) <= len("bounce+") + 20  # short
    token = path.token_in(address.upper())
    assert token == address.split("+")[1].split("@")[0]
    assert path.token_in("info@smileworks.example.jp") is None


def test_a_forged_token_does_not_verify() -> None:
    token = verp_token(KEY, 7, "<m@x.jp>")
    forged = token[:-1] + ("a" if token[-1] != "a" else "b")
    assert not token_verifies(KEY, forged, 7, "<m@x.jp>")
    assert parse_token("7-tooshort") is None


def test_without_a_token_the_return_path_is_fixed() -> None:
    assert ReturnPath("bounces@x.jp", None).for_delivery(5, "<m@x.jp>") == "bounces@x.jp"
    assert ReturnPath("bounces@x.jp", None).token_in("bounces@x.jp") is None


@pytest.mark.parametrize(
    "value",
    [
        "bounce+{token}{token}@x.jp",
        "bounce@{token}.x.jp",
        "Bounce <bounce+{token}@x.jp>",
        "bounce+{token}",
    ],
)
def test_bad_return_paths_are_config_errors(value: str) -> None:
    problem = return_path_problem(value)
    assert problem is not None and problem.startswith("message.return_path")
    with pytest.raises(ConfigError, match=r"SWMAIL_MESSAGE_RETURN_PATH: message\.return_path"):
        load_settings(None, env={"SWMAIL_MESSAGE_RETURN_PATH": value})


def test_good_return_paths_pass() -> None:
    for value in (TEMPLATE, "bounces@mailer.smileworks.example.jp", ""):
        assert return_path_problem(value) is None


def test_settings_refuse_a_bad_return_path_or_redirect_when_loaded() -> None:
    with pytest.raises(ConfigError, match=r"message\.return_path"):
        load_settings(None, env={"SWMAIL_MESSAGE_RETURN_PATH": "bounce+{token}"})
    with pytest.raises(ConfigError, match=r"message\.redirect_all_to"):
        load_settings(None, env={"SWMAIL_MESSAGE_REDIRECT_ALL_TO": "Me <me@example.jp>"})
    loaded = load_settings(None, env={"SWMAIL_MESSAGE_REDIRECT_ALL_TO": "me@example.jp"})
    assert loaded.message.redirect_all_to == "me@example.jp"


def test_a_token_without_its_key_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SWMAIL_MESSAGE_RETURN_PATH": TEMPLATE, "SWMAIL_MESSAGE_VERP_KEY_ENV": "SWMAIL_K"}
    settings = load_settings(None, env=env)
    monkeypatch.delenv("SWMAIL_K", raising=False)
    with pytest.raises(ConfigError, match="SWMAIL_K"):
        settings.message.verp_key()
    monkeypatch.setenv("SWMAIL_K", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        settings.message.verp_key()
    monkeypatch.setenv("SWMAIL_K", "long-enough-secret-0123")
    assert settings.message.verp_key() == b"long-enough-secret-0123"
