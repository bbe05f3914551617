"""Issue 11: which language an operator reads: `--lang`, then `[ui] language`, then the locale
variables, then English; and the pieces that never change with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from jobs.i18n import Choice, choose_language, fmt_date, fmt_person, language_from_env, set_language
from run_campaign import cli
from tests.conftest import REPO


@pytest.mark.parametrize(
    ("option", "setting", "env", "expected"),
    [
        ("en", "ja", {"LANG": "ja_JP.UTF-8"}, Choice("en", "option")),
        ("ja", "en", {"LANG": "en_US.UTF-8"}, Choice("ja", "option")),
        (None, "ja", {"LANG": "en_US.UTF-8"}, Choice("ja", "setting")),
        (None, "en", {"LC_ALL": "ja_JP.UTF-8"}, Choice("en", "setting")),
        (None, "", {"LANG": "ja_JP.UTF-8"}, Choice("ja", "environment")),
        (None, None, {"LANG": "C.UTF-8"}, Choice("en", "environment")),
        (None, "", {}, Choice("en", "default")),
    ],
)
def test_the_option_then_the_setting_then_the_environment_then_english(
    option: str | None, setting: str | None, env: dict[str, str], expected: Choice
) -> None:
    assert choose_language(option, setting, env) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LC_ALL": "ja_JP.UTF-8", "LANG": "en_US.UTF-8"}, "ja"),
        ({"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}, "en"),  # LC_ALL set: it decides
        ({"LC_ALL": "", "LC_MESSAGES": "ja_JP.eucJP", "LANG": "en_US"}, "ja"),
        ({"LC_MESSAGES": "en_GB.UTF-8", "LANG": "ja_JP.UTF-8"}, "en"),
        ({"LANG": "ja"}, "ja"),
        ({"LANG": "ja_JP@cjk"}, "ja"),
        ({"LANG": "fr_FR.UTF-8"}, "en"),
        ({}, None),
    ],
)
def test_the_locale_variables_in_posix_order(env: dict[str, str], expected: str | None) -> None:
    assert language_from_env(env) == expected


def _settings(tmp_path: Path, language: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'[ui]\nlanguage = "{language}"\n', encoding="utf-8")
    return path


def _help(*args: str, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(cli, [*args, "explain", "--help"], env=env)
    assert result.exit_code == 0, result.output
    return result.output


def _is_ja(text: str) -> bool:
    return text.startswith("使い方: cli explain") and "判定の経過を JSON で出力します。" in text


def _is_en(text: str) -> bool:
    return text.startswith("Usage: cli explain") and "Print the trace as JSON." in text


def test_the_cli_follows_the_order_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/settings.toml here: only what each case gives
    ja_settings = str(_settings(tmp_path, "ja"))
    assert _is_en(_help())  # default
    assert _is_ja(_help(env={"LANG": "ja_JP.UTF-8"}))  # environment
    assert _is_en(_help(env={"LC_ALL": "C", "LANG": "ja_JP.UTF-8"}))
    assert _is_ja(_help("--config", ja_settings, env={"LANG": "en_US.UTF-8"}))  # setting
    assert _is_ja(_help(env={"SWMAIL_UI_LANGUAGE": "ja", "LANG": "C"}))  # setting, from env
    assert _is_en(_help("--config", ja_settings, "--lang", "en"))  # option beats setting
    assert _is_en(_help("--lang=en", env={"LANG": "ja_JP.UTF-8"}))  # option beats environment
    assert _is_ja(_help("--lang", "ja"))


def test_an_unknown_language_setting_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    path = _settings(tmp_path, "fr")
    result = CliRunner().invoke(cli, ["--config", str(path), "status"])
    assert result.exit_code == 2
    assert "ui.language" in result.stderr


def test_clicks_own_usage_errors_follow_the_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(cli, ["--lang", "ja", "explain", "--as-of", "2026-13-01"])
    assert result.exit_code == 2
    assert "エラー: '--as-of' の値が正しくありません: '2026-13-01' は日付ではありません" in (
        result.stderr
    )
    assert "使い方は 'cli explain --help' で確認できます。" in result.stderr
    result = CliRunner().invoke(cli, ["--lang", "en", "explain", "--as-of", "2026-13-01"])
    assert "Error: Invalid value for '--as-of': '2026-13-01' is not a date" in result.stderr


def test_japanese_dates_and_names() -> None:
    from datetime import date

    set_language("ja")
    assert fmt_date(date(2026, 12, 1)) == "2026年12月1日"
    assert fmt_person("井上 直樹", "n@example.jp") == "井上 直樹 様 <n@example.jp>"
    set_language("en")
    assert fmt_date(date(2026, 12, 1)) == "2026-12-01"
    assert fmt_person("井上 直樹", "n@example.jp") == "井上 直樹 <n@example.jp>"


def test_sentences_kept_in_english_are_shown_in_japanese_part_by_part() -> None:
    """The ledger and JSON keep English; `localize` finds the template and each part."""
    from jobs.app import render_provenance
    from jobs.i18n import _

    set_language("ja")
    assert _("") == ""  # not the catalog's header
    shown = render_provenance(
        "suppressed by a hard bounce in run n/2026-12-01 on 2026-12-02: 550 5.1.1 unknown"
    )
    assert shown == "宛先不明で配信停止（実行 n/2026-12-01）（2026年12月2日）: 550 5.1.1 unknown"
    assert render_provenance("suppressed by an operator (manual), note: 電話で依頼") == (
        "担当者が配信停止（manual）、メモ: 電話で依頼"
    )
    assert render_provenance("something no template knows") == "something no template knows"
    set_language("en")
    assert render_provenance("suppressed by a hard bounce") == "suppressed by a hard bounce"


@pytest.mark.parametrize(
    ("sentence", "shown"),
    [
        (
            "Address ｔａｒｏ@example.jp of user u1 of C0000001 was normalized to taro@example.jp.",
            "C0000001 のユーザー u1のアドレス ｔａｒｏ@example.jp を taro@example.jp"
            " に正規化しました。",
        ),
        (
            "Address a@example.jp of partner contact c9 of P0001 was normalized to a@example.jp.",
            "P0001 のパートナー担当者 c9のアドレス a@example.jp を a@example.jp に正規化しました。",
        ),
        (
            "Address a@example.jp of My Page billing contact of C0000001 was normalized to"
            " a@example.jp.",
            "C0000001 のマイページの請求担当者のアドレス a@example.jp を a@example.jp"
            " に正規化しました。",
        ),
    ],
)
def test_a_role_beside_a_person_id_is_translated(sentence: str, shown: str) -> None:
    """`{role}{person}`: the pattern alone would give `user u1` to the person, untranslated."""
    from jobs.i18n import localize
    from resolver.warnings import DETAIL_TEMPLATES

    set_language("ja")
    assert localize(sentence, DETAIL_TEMPLATES) == shown
    set_language("en")
