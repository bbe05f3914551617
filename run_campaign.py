"""The operator's CLI (SPEC §8): parses options, calls one `jobs` entry point, maps exit codes.

No policy lives here. `MailerError`s become one `Error: …` line on stderr and their exit code (2
input/config, 4 locked); anything else is a bug: exit 1, the traceback goes to the log file, the
operator gets one line that says where it is.
"""

from __future__ import annotations

import gettext
import importlib
import inspect
import json
import logging
import os
import re
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from jobs.app import (
    App,
    append_error_log,
    configure_logging,
    render_explanation,
    render_preview,
    render_provenance,
)
from jobs.config.campaign import Campaign
from jobs.config.runs import name_problem, split_run_id
from jobs.config.settings import load_settings
from jobs.errors import ConfigError, InputError, MailerError, Terminated
from jobs.i18n import N_, _, choose_language, current_language, fmt_date, set_language, tr
from jobs.terminal import terminal_safe
from resolver.model import DeliveryStatus

__all__ = ["cli", "main"]

ERROR_LOG = Path("var/log/swmail-errors.log")
log = logging.getLogger("swmail")


def _exit_with(error: MailerError) -> click.ClickException:
    """A `MailerError` as click shows it: `Error: <message>` and the error's exit code."""
    shown: type[click.ClickException] = type(
        f"{type(error).__name__}Exit", (click.ClickException,), {"exit_code": error.exit_code}
    )
    return shown(terminal_safe(error.message, keep=""))  # one line, whatever the data held


def _echo(text: str, *, err: bool = False) -> None:
    """Print a line (or lines) that may hold data: controls and bidi overrides escaped."""
    click.echo(terminal_safe(text), err=err)


def _echo_json(value: Any) -> None:
    """Print JSON that parses to the same values, with no raw C1 or bidi control in it."""
    click.echo(terminal_safe(json.dumps(value, ensure_ascii=False, indent=2), json=True))


def _on_sigterm(signum: int, frame: object) -> None:
    """Outside a sending pass (which has its own handler), SIGTERM unwinds like Ctrl-C."""
    raise Terminated("SIGTERM")


def _internal_error(exc: BaseException) -> NoReturn:
    where = tr("traceback in {log}", log=ERROR_LOG)
    try:
        append_error_log(
            ERROR_LOG,
            f"--- {datetime.now().isoformat()} {' '.join(sys.argv)}\n"
            + "".join(traceback.format_exception(exc)),
        )
    except MailerError as log_error:
        where = tr("no traceback: {problem}", problem=log_error.message)
    _echo(
        tr(
            "Internal error: {kind}: {exc} ({where}); please report it",
            kind=type(exc).__name__,
            exc=exc,
            where=where,
        ),
        err=True,
    )
    sys.exit(1)


# click's own words (usage lines, "Missing option", "Error: …"): click looks them up through the
# stdlib `gettext` that each of its modules imports as `_`. Pointing those at our catalog makes
# them follow `--lang` like ours (tests/i18n/test_language.py pins it for click's versions).
CLICK_MESSAGES = (
    N_("Usage:"),
    N_("Options"),
    N_("Commands"),
    N_("Show this message and exit."),
    N_("Error: {message}"),
    N_("Invalid value for {param_hint}: {message}"),
    N_("Invalid value: {message}"),
    N_("Missing option"),
    N_("Missing argument"),
    N_("Missing command."),
    N_("Missing parameter: {param_name}"),
    N_("No such command {name!r}."),
    N_("No such option {name!r}."),
    N_("Try '{command} {option}' for help."),
    N_("default: {default}"),
    N_("required"),
    N_("Aborted!"),
    N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a directory."),
    N_("{name} {filename!r} is a file."),
    N_("directory"),
    N_("file"),
    N_("path"),
    N_("env var: {var}"),
    # through `ngettext`: one form each for one and for more (Japanese needs only one)
    N_("Did you mean {possibility}?"),
    N_("(Did you mean one of: {possibilities}?)"),
    N_("Got unexpected extra argument ({args})"),
    N_("Got unexpected extra arguments ({args})"),
    N_("Option {name!r} requires an argument."),
    N_("Option {name!r} requires {nargs} arguments."),
    N_("{value!r} is not {choice}."),
    N_("{value!r} is not one of {choices}."),
)
_CLICK_MODULES = ("core", "exceptions", "formatting", "decorators", "types", "parser")


def _ngettext(singular: str, plural: str, n: int) -> str:
    """click's plural messages: the English form for `n`, then our catalog, like `_`."""
    return _(singular if n == 1 else plural)


def _click_speaks_the_operators_language() -> None:
    for name in _CLICK_MODULES:
        module = importlib.import_module(f"click.{name}")
        if getattr(module, "_", None) is gettext.gettext:  # only the binding we know
            setattr(module, "_", _)  # noqa: B010 - a module's global, not an attribute we own
        if getattr(module, "ngettext", None) is gettext.ngettext:
            setattr(module, "ngettext", _ngettext)  # noqa: B010 - as above


_click_speaks_the_operators_language()


def _help(text: str | None) -> str | None:
    """A help text (docstring or `help=`) in the operator's language; the English is the id."""
    return _(inspect.cleandoc(text)) if text else text


class TranslatedHelp(click.Command):
    """Help texts are looked up when shown, so `--lang` and the locale apply to `--help` too.

    The English texts stay where click expects them (docstrings, `help=`), which is where
    `tools/babel_click.py` extracts them from.
    """

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        saved, self.help = self.help, _help(self.help)
        try:
            super().format_help_text(ctx, formatter)
        finally:
            self.help = saved

    def get_short_help_str(self, limit: int = 45) -> str:
        if self.short_help or not self.help or current_language() == "en":
            return super().get_short_help_str(limit)
        text = _help(self.help) or ""
        # Japanese has no spaces to cut at: the first sentence, as the translator wrote it
        return text.split("\n")[0].split("。")[0]

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        saved = [(p, p.help) for p in self.get_params(ctx) if isinstance(p, click.Option)]
        for param, text in saved:
            param.help = _help(text)
        try:
            super().format_options(ctx, formatter)
        finally:
            for param, text in saved:
                param.help = text


def _global_option(args: Sequence[str], name: str) -> str | None:
    """The value of a global option (`--lang ja`, `--lang=ja`) before click parses anything."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.partition("=")[2]
    return None


def choose_cli_language(args: Sequence[str], env: os._Environ[str] | dict[str, str]) -> None:
    """Issue 11: `--lang`, else settings `[ui] language`, else the locale, else English.

    Chosen before click parses, so that `--help` and click's own usage errors follow it. A
    settings file that does not load leaves the choice to the environment; the command then
    reports the problem itself.
    """
    option = _global_option(args, "--lang")
    setting: str | None = None
    if not option:
        config = _global_option(args, "--config")
        try:
            setting = load_settings(Path(config) if config else None, env).ui.language
        except ConfigError:
            setting = None
    set_language(choose_language(option, setting, env).language)


class MailerGroup(TranslatedHelp, click.Group):
    """Turns the program's errors into exit codes in one place (like click's own `main`)."""

    command_class = TranslatedHelp
    group_class = type

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            choose_cli_language(args, os.environ)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MailerError as exc:
            raise _exit_with(exc) from exc
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Terminated:
            # SIGTERM (systemd's stop) is a clean stop like Ctrl-C, reported as shells do
            _echo(
                _("Terminated: what the server confirmed is recorded; run again to resume."),
                err=True,
            )
            sys.exit(Terminated.exit_code)
        except KeyboardInterrupt:
            # 130 as shells report SIGINT; 1 is reserved for bugs (SPEC §8)
            _echo(
                _("Interrupted: what the server confirmed is recorded; run again to resume."),
                err=True,
            )
            sys.exit(130)
        except Exception as exc:  # a bug: the operator gets one line, the log the traceback
            _internal_error(exc)


pass_app = click.make_pass_decorator(App)


# --- parameter types: options are checked at the edge, commands receive typed values --------


class RunKeyType(click.ParamType[str, Any]):
    """`--run-key K`: the rule of `jobs.config.runs` (no '/', no spaces)."""

    name = "run_key"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        problem = name_problem(str(value))
        if problem is not None:
            self.fail(f"{value!r} {problem}", param, ctx)
        return str(value)


class RunIdType(click.ParamType[str, Any]):
    """`--run RUN_ID`: `<campaign_id>/<run_key>`, both parts under the run-key rule."""

    name = "RUN_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            split_run_id(str(value))
        except InputError as exc:
            self.fail(terminal_safe(exc.message, keep=""), param, ctx)
        return str(value)


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class AsOfType(click.ParamType[date, Any]):
    """`--as-of D`: a calendar date, YYYY-MM-DD."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, date):
            return value
        text = str(value)
        if _DATE.fullmatch(text):
            try:
                return date.fromisoformat(text)
            except ValueError:
                pass
        self.fail(tr("{text!r} is not a date (YYYY-MM-DD)", text=text), param, ctx)


class CampaignType(click.ParamType[Campaign, Any]):
    """`--campaign C`: an id under `paths.campaigns` or a path; loaded and checked here."""

    name = "campaign"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Campaign:
        if isinstance(value, Campaign):
            return value
        app = ctx.find_object(App) if ctx is not None else None
        if app is None:
            app = App(None)
        app.settings  # noqa: B018 - a settings error is reported as itself, not as this option's
        try:
            return app.campaign(str(value))
        except ConfigError as exc:  # the file's own text may be quoted: escaped like any error
            self.fail(terminal_safe(exc.message, keep=""), param, ctx)


RUN_KEY = RunKeyType()
RUN_ID = RunIdType()
AS_OF = AsOfType()
CAMPAIGN = CampaignType()


def as_of_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--as-of",
        "as_of",
        type=AS_OF,
        default=None,
        help="Resolve as of this date (YYYY-MM-DD; default: today in Asia/Tokyo).",
    )(f)


def campaign_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--campaign",
        "campaign",
        type=CAMPAIGN,
        required=True,
        metavar="C",
        help="Campaign id (config/campaigns/<id>.toml) or path to a campaign file.",
    )(f)


def run_key_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--run-key", type=RUN_KEY, default=None, help="Run key (default: the as-of date)."
    )(f)


_WRITTEN_CSV = N_("Encoding of the CSV files written (utf-8 gets a BOM for Excel).")


def encoding_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--encoding utf-8|cp932`: the two encodings Japanese Excel users need (SPEC §3, §5)."""
    return click.option(
        "--encoding",
        type=click.Choice(["utf-8", "cp932"]),
        default="utf-8",
        show_default=True,
        help=help_text,
    )


class MomentType(click.ParamType[datetime, Any]):
    """`--now DATETIME`: an ISO-8601 date-time with its offset (a replayed clock)."""

    name = "datetime"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            parsed = datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(tr("{value!r} is not an ISO-8601 date-time", value=value), param, ctx)
        if parsed.tzinfo is None:
            self.fail(tr("{value!r} needs an offset, e.g. {value}+09:00", value=value), param, ctx)
        return parsed


MOMENT = MomentType()


def _is_tty() -> bool:
    return sys.stderr.isatty()


@click.group(cls=MailerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="SWMAIL_CONFIG",
    help="Settings file (default: config/settings.toml; env SWMAIL_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv: debug).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines on stderr: text, or JSON lines carrying run_id.",
)
@click.option(
    "--lang",
    type=click.Choice(["ja", "en"]),
    default=None,
    expose_value=False,  # applied before parsing (MailerGroup.parse_args); checked here
    help="Language of what you read (default: settings [ui] language, then LANG).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int, log_format: str) -> None:
    """SmileWorks announcement mailer: who receives each announcement, why, and sending it."""
    # text or JSON lines, escaped for the terminal like every other output (`jobs.logs`)
    configure_logging(logging.WARNING - 10 * min(verbose, 2), log_format)
    app = App(config)
    ctx.obj = app
    ctx.call_on_close(app.close)


# --- db ---------------------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The source database: create tables, import CSV files."""


@db.command("init")
@pass_app
def db_init(app: App) -> None:
    """Create the source tables (SPEC §3) and the job's own ledger tables; safe to repeat."""
    ready = app.db_init()
    _echo(tr("database ready: {url}", url=ready.database))
    if ready.ledger is not None:
        _echo(tr("ledger ready: {url}", url=ready.ledger))


@db.command("import")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@encoding_option(N_("Encoding of the CSV files (cp932 for Excel exports)."))
@pass_app
def db_import(app: App, directory: Path, encoding: str) -> None:
    """Load the CSV files of DIRECTORY (SPEC §3), replacing the data set; all or nothing."""
    report = app.db_import(directory, encoding)
    parts = ", ".join(f"{table} {n:,}" for table, n in report.counts.items())
    _echo(
        tr(
            "imported {rows:,} rows in {seconds:.2f}s: {parts}",
            rows=report.total_rows,
            seconds=report.elapsed_seconds,
            parts=parts,
        )
    )
    if report.absent:
        _echo(tr("absent (empty): {files}", files=", ".join(report.absent)))


# --- resolution -------------------------------------------------------------------------------


def _print_summary(summary: Any) -> None:
    data = summary.as_json()
    _echo(
        tr(
            "{candidates:,} candidates in {accounts:,} accounts → {deliveries:,} deliveries"
            " ({seconds}s)",
            candidates=data["candidates"],
            accounts=data["accounts"],
            deliveries=data["deliveries"],
            seconds=data["seconds"],
        )
    )
    for decision in ("send", "merged", "skip"):
        _echo(f"  {decision:<7} {data['decisions'].get(decision, 0):>8,}")
    _echo(_("by audience:"))
    for audience, decisions in data["audiences"].items():
        cells = "  ".join(f"{d} {n:,}" for d, n in decisions.items())
        _echo(f"  {audience:<23} {cells}")
    _echo(_("by reason:"))
    for reason, n in data["reasons"].items():
        _echo(f"  {reason:<22} {n:>8,}")
    if data["excluded_by_filters"]:
        _echo(tr("outside the campaign's filters: {n:,}", n=data["excluded_by_filters"]))
    if data["warnings"]:
        _echo(_("warnings:"))
        for code, n in data["warnings"].items():
            _echo(f"  {code:<22} {n:>8,}")


@cli.command()
@campaign_option
@as_of_option
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_app
def resolve(app: App, campaign: Campaign, as_of: date | None, as_json: bool) -> None:
    """Count who would receive a campaign: by decision, audience and reason."""
    day = app.as_of(as_of)
    resolved = app.resolve(campaign, day, progress=_is_tty())
    if as_json:
        out = {"campaign_id": campaign.id, "as_of": day.isoformat(), **resolved.summary.as_json()}
        _echo_json(out)
    else:
        _echo(tr("campaign {id} as of {day}", id=campaign.id, day=fmt_date(day)))
        _print_summary(resolved.summary)


@cli.command("dry-run")
@campaign_option
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for audit.csv, warnings.csv and messages/<n>.eml.",
)
@run_key_option
@as_of_option
@encoding_option(_WRITTEN_CSV)
@pass_app
def dry_run_cmd(
    app: App,
    campaign: Campaign,
    out: Path,
    run_key: str | None,
    as_of: date | None,
    encoding: str,
) -> None:
    """Resolve and render every message to DIR as `run` would send them; send nothing."""
    day = app.as_of(as_of)
    report = app.dry_run(
        campaign,
        out,
        run_key=app.run_key(run_key, day),
        as_of=day,
        encoding=encoding,
        progress=_is_tty(),
    )
    _echo(
        tr(
            "dry run {run_id} as of {day} (nothing sent)",
            run_id=report.run_id,
            day=fmt_date(day),
        )
    )
    _print_summary(report.summary)
    _echo(tr("audit:    {path}", path=out / "audit.csv"))
    _echo(tr("warnings: {path}", path=out / "warnings.csv"))
    _echo(tr("messages: {path} ({n:,} files)", path=out / "messages", n=report.messages))
    if campaign.require_approval:
        command = app.approve_command(campaign, app.run_key(run_key, day), day)
        _echo(tr("this campaign needs an approval; next: {command}", command=command))
    _report_side_notes(report.charset_fallbacks, report.unencodable, encoding)


def _report_side_notes(fallbacks: list[str], unencodable: list[Any], encoding: str) -> None:
    if fallbacks:
        _echo(
            tr(
                "note: {n} message(s) hold characters ISO-2022-JP cannot encode and were built"
                " in UTF-8 instead, e.g. to {first}",
                n=len(fallbacks),
                first=fallbacks[0],
            ),
            err=True,
        )
    if unencodable:
        first = unencodable[0]
        _echo(
            tr(
                "note: {n} cell(s) cannot be written in {encoding} and hold '?' instead; first"
                " at line {line}, column {column}: {value!r}. Use the default UTF-8 to keep"
                " every character.",
                n=len(unencodable),
                encoding=encoding,
                line=first.line,
                column=first.column,
                value=first.value,
            ),
            err=True,
        )


@cli.command()
@campaign_option
@click.option("--email", default=None, help="A person's e-mail address.")
@click.option("--corp-id", default=None, help="A customer's corp_id.")
@click.option("--partner-id", default=None, help="A partner's partner_id.")
@as_of_option
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
@pass_app
def explain(
    app: App,
    campaign: Campaign,
    email: str | None,
    corp_id: str | None,
    partner_id: str | None,
    as_of: date | None,
    as_json: bool,
) -> None:
    """Why a person or account does or does not receive a campaign, rule by rule."""
    result = app.explain(
        campaign, app.as_of(as_of), email=email, corp_id=corp_id, partner_id=partner_id
    )
    if as_json:
        _echo_json(result.as_json())
    else:
        _echo(render_explanation(result))


@cli.command()
@campaign_option
@click.option("--email", required=True, help="The recipient's e-mail address.")
@run_key_option
@as_of_option
@click.option("--raw", is_flag=True, help="Print the whole message as sent (RFC 5322 bytes).")
@pass_app
def preview(
    app: App,
    campaign: Campaign,
    email: str,
    run_key: str | None,
    as_of: date | None,
    raw: bool,
) -> None:
    """Show the rendered message one recipient would receive."""
    day = app.as_of(as_of)
    composed = app.preview(campaign, email, run_key=app.run_key(run_key, day), as_of=day)
    for i, message in enumerate(composed):
        if i:
            _echo("=" * 72)
        if raw:
            sys.stdout.flush()
            sys.stdout.buffer.write(message.data)
            sys.stdout.buffer.flush()
        else:
            _echo(render_preview(message))


# --- sending ------------------------------------------------------------------------------------


@cli.command()
@campaign_option
@click.option(
    "--run-key",
    type=RUN_KEY,
    default=None,
    help="Run key (default: the campaign's unfinished run, else the as-of date).",
)
@as_of_option
@click.option(
    "--resend",
    is_flag=True,
    help="Send again what earlier runs of this one-off campaign sent (no ALREADY_SENT).",
)
@pass_app
def run(
    app: App, campaign: Campaign, run_key: str | None, as_of: date | None, resend: bool
) -> None:
    """Resolve (the first time) and send a campaign; run it again to resume.

    Without --run-key an unfinished run of the campaign is resumed (and said so). Exit 0 when
    every delivery is sent or failed, 3 when deferred deliveries are left for the next run, 4
    when another coordinator holds the run, 2 when a campaign that needs an approval has none
    that matches.
    """
    day = app.as_of(as_of)
    if run_key is None:
        open_run = app.unfinished_run(campaign, day)
        if open_run is not None:
            # §9: a second `run` the next day resumes instead of sending everything again
            _echo(
                tr(
                    "resuming the unfinished run {run_id} (as of {open_day}) instead of starting"
                    " a run as of {day}; give --run-key to start another run",
                    run_id=open_run.run_id,
                    open_day=fmt_date(open_run.as_of),
                    day=fmt_date(day),
                )
            )
            run_key, day = open_run.run_key, open_run.as_of
    outcome = app.run(
        campaign,
        run_key=app.run_key(run_key, day),
        as_of=day,
        resend=resend,
        progress=_is_tty(),
    )
    r = outcome.run
    verb = _("resolved and froze") if outcome.created else _("resumed")
    _echo_redirected(app)
    _echo(
        tr("run {run_id} ({verb}; as of {day})", run_id=r.run_id, verb=verb, day=fmt_date(r.as_of))
    )
    if outcome.resolution is not None:
        _print_summary(outcome.resolution)
    p = outcome.pass_report
    _echo(tr("this pass: {counts}", counts=_pass_counts(p)))
    if outcome.reset_in_flight:
        _echo(
            tr(
                "resent after a crash: {n:,} deliveries were in flight (same Message-ID; at"
                " most these can arrive twice)",
                n=outcome.reset_in_flight,
            )
        )
    if p.possible_duplicates:
        _echo(
            tr(
                "possible duplicates: {n:,} (resent with the same Message-ID after an unknown"
                " outcome: a connection lost after the body, or a crash)",
                n=p.possible_duplicates,
            )
        )
    if p.hard_bounces:
        _echo(tr("hard bounces added to the suppression list: {n:,}", n=p.hard_bounces))
    if p.relay_down:
        _echo(tr("relay down: {detail}", detail=p.relay_down))
    for line in p.first_errors:
        _echo(f"  {line}", err=True)
    _print_status(outcome.stats)
    _report_side_notes(p.charset_fallbacks, [], "utf-8")
    app.close()
    sys.exit(outcome.exit_code)


@cli.command()
@campaign_option
@run_key_option
@as_of_option
@pass_app
def approve(app: App, campaign: Campaign, run_key: str | None, as_of: date | None) -> None:
    """Resolve, print the counts and record the approval of a run key (require_approval)."""
    day = app.as_of(as_of)
    key = app.run_key(run_key, day)
    approval, summary = app.approve(campaign, run_key=key, as_of=day)
    _echo(
        tr(
            "campaign {campaign} run key {key} as of {day}",
            campaign=campaign.id,
            key=key,
            day=fmt_date(day),
        )
    )
    _print_summary(summary)
    _echo(
        tr(
            "approved by {who} (fingerprint {fingerprint}; refused later if the campaign file,"
            " templates or [message] settings change, or a send count drifts more than"
            " {drift:g}%)",
            who=approval.approved_by,
            fingerprint=approval.fingerprint[:12],
            drift=campaign.max_drift_percent,
        )
    )


@cli.command()
@click.option(
    "--campaigns",
    "campaigns_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of campaign files (default: paths.campaigns, config/campaigns).",
)
@click.option(
    "--now",
    type=MOMENT,
    default=None,
    metavar="DATETIME",
    help="Replay the clock: an ISO-8601 date-time with offset (tests, backfills).",
)
@pass_app
def nightly(app: App, campaigns_dir: Path | None, now: datetime | None) -> None:
    """Send every scheduled campaign that is due; one summary line per campaign (for cron).

    Exit code: the worst of the campaigns (1 > 2 > 4 > 3 > 0); 4 at once when another nightly
    holds this ledger. When any campaign is refused, expired, deferred, failed or broken, one
    summary e-mail goes to `[alerts] to`.
    """
    report = app.nightly(campaigns_dir, now)
    _echo_redirected(app)
    for line in report.lines:
        _echo(line.text())
    if not report.lines:  # on stderr: every stdout line is a campaign's line (for cron, scripts)
        folder = campaigns_dir or Path(app.settings.paths.campaigns)
        _echo(tr("no campaign files in {folder}: nothing to do", folder=folder), err=True)
    problem = app.send_alert(report)
    if problem is not None:
        # §9: the exit code stays that of the campaigns; the failure is said on stderr
        _echo(tr("alert: {problem}", problem=problem), err=True)
    app.close()
    sys.exit(report.exit_code)


@cli.command()
@click.option(
    "--run", "run_id", type=RUN_ID, required=True, help="The run to help: <campaign>/<key>."
)
@pass_app
def worker(app: App, run_id: str) -> None:
    """An extra sender for a run in progress (PostgreSQL or MariaDB ledger).

    Claims deliveries beside the `run` coordinator and other workers and exits 0 when nothing
    is left to claim. Its claims come back to the others after `smtp.claim_lease_seconds` if
    it dies; it exits 4 if it cannot renew its lease.
    """
    outcome = app.worker(run_id, progress=_is_tty())
    p = outcome.pass_report
    _echo_redirected(app)
    _echo(
        tr(
            "worker {worker} on {run_id}: {counts}",
            worker=outcome.worker_id,
            run_id=outcome.run.run_id,
            counts=_pass_counts(p),
        )
    )
    for line in p.first_errors:
        _echo(f"  {line}", err=True)
    app.close()
    sys.exit(outcome.exit_code)


def _echo_redirected(app: App) -> None:
    """§10: with `message.redirect_all_to` set, a summary of anything that sends (`run`,
    `worker`, `nightly`) says so on its first line; one home so the three cannot drift."""
    if (notice := app.redirect_notice()) is not None:
        _echo(notice)


def _pass_counts(p: Any) -> str:
    """One sending pass in numbers, the same words for `run` and `worker`."""
    return tr(
        "sent {sent:,}, deferred {deferred:,}, failed {failed:,} in {seconds:.2f}s"
        " ({rate:,.0f} messages/s)",
        sent=p.sent,
        deferred=p.deferred,
        failed=p.failed,
        seconds=p.seconds,
        rate=p.rate,
    )


def _print_status(st: Any) -> None:
    counts = {s.value: n for s, n in st.counts.items()}
    cells = "  ".join(f"{s.value} {counts.get(s.value, 0):,}" for s in DeliveryStatus)
    _echo(tr("ledger: {cells}", cells=cells))


@cli.command()
@click.option("--run", "run_id", type=RUN_ID, default=None, help="One run: <campaign>/<key>.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def status(app: App, run_id: str | None, as_json: bool) -> None:
    """Progress of runs: deliveries per status, what is left, how fast it went."""
    rows = app.status(run_id)
    if as_json:
        _echo_json([r.as_json() for r in rows])
        return
    if not rows:
        _echo(_("no runs yet"))
    for r in rows:
        _echo(r.text())


@cli.group()
def audit() -> None:
    """The audit trail of runs."""


@audit.command("export")
@click.option("--run", "run_id", type=RUN_ID, required=True, help="<campaign>/<run key>.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The CSV file to write.",
)
@encoding_option(_WRITTEN_CSV)
@pass_app
def audit_export(app: App, run_id: str, out: Path, encoding: str) -> None:
    """Write the audit CSV of a run (SPEC §5) with each delivery's status."""
    written = app.audit_export(run_id, out, encoding)
    _echo(tr("wrote {n:,} rows to {path}", n=written.rows, path=out))
    _report_side_notes([], written.unencodable, encoding)


# --- bounces, suppressions, the postal list, test sends (SPEC §10) ------------------------------


@cli.group()
def bounces() -> None:
    """Delivery status notifications that came back after sending."""


_provenance = render_provenance  # where a suppression came from, in the operator's language


def _listed(title: str, items: list[Any]) -> None:
    if not items:
        return
    _echo(f"{_(title)}:")
    for item in items:
        who = tr(" (from {sender})", sender=item.sender) if item.sender else ""
        _echo(f"  {item.where}: {item.subject or _('(no subject)')}{who}: {item.why}")


@bounces.command("import")
@click.option(
    "--maildir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A Maildir folder (with new/ and cur/) that receives the bounces.",
)
@click.option(
    "--mbox",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="An mbox file that receives the bounces.",
)
@pass_app
def bounces_import(app: App, maildir: Path | None, mbox: Path | None) -> None:
    """Match bounces to deliveries: 5.x.x → bounced and suppressed, 4.x.x → recorded; repeatable."""
    report = app.bounces_import(maildir=maildir, mbox=mbox)
    t = report.tally
    _echo(
        tr(
            "read {messages:,} messages from {source}: {bounces:,} bounces, {other:,} not bounces",
            messages=report.messages,
            source=maildir or mbox,
            bounces=report.bounces,
            other=len(report.not_bounces),
        )
    )
    _echo(
        tr(
            "matched {by_id:,} by Message-ID and {by_verp:,} by VERP token; unmatched"
            " {unmatched:,}; refused {forged:,} (forged token)",
            by_id=report.by_message_id,
            by_verp=report.by_verp,
            unmatched=len(report.unmatched),
            forged=len(report.forged),
        )
    )
    _echo(
        tr(
            "recorded {hard:,} hard and {soft:,} soft bounces ({repeated:,} imported before);"
            " {bounced:,} deliveries now bounced, {suppressed:,} addresses suppressed",
            hard=t.hard,
            soft=t.soft,
            repeated=t.repeated,
            bounced=t.bounced,
            suppressed=t.suppressed,
        )
    )
    _listed(N_("not bounces"), report.not_bounces)
    _listed(N_("unmatched"), report.unmatched)
    _listed(N_("refused"), report.forged)


@cli.group()
def suppress() -> None:
    """The job's own suppression list (unioned with suppressions.csv)."""


@suppress.command("add")
@click.argument("email")
@click.option(
    "--reason",
    type=click.Choice(["manual", "complaint"]),
    default="manual",
    show_default=True,
    help="Why the address is stopped.",
)
@click.option("--note", default="", help="Free text kept with the entry (who asked, ticket…).")
@pass_app
def suppress_add(app: App, email: str, reason: str, note: str) -> None:
    """Stop every later campaign to EMAIL (normalized as in SPEC §4)."""
    entry, added = app.suppress_add(email, reason, note)
    if added:
        _echo(
            tr(
                "suppressed {email} ({reason}): later runs skip it",
                email=entry.email,
                reason=entry.reason.value,
            )
        )
    else:
        _echo(
            tr(
                "{email} was already suppressed, left as it is: {provenance}",
                email=entry.email,
                provenance=_provenance(entry.provenance()),
            )
        )


@suppress.command("remove")
@click.argument("email")
@pass_app
def suppress_remove(app: App, email: str) -> None:
    """Lift the job's stop on EMAIL (a stop from suppressions.csv is lifted there)."""
    entry, still = app.suppress_remove(email)
    _echo(
        tr(
            "removed {email} from the job's suppression list ({provenance})",
            email=entry.email,
            provenance=_provenance(entry.provenance()),
        )
    )
    if still:
        _echo(
            tr(
                "note: {email} stays {provenance}",
                email=entry.email,
                provenance=_provenance(still[0].provenance()),
            )
        )


@suppress.command("list")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a CSV file (SPEC §5 conventions) instead of printing CSV.",
)
@encoding_option(_WRITTEN_CSV)
@pass_app
def suppress_list(app: App, out: Path | None, encoding: str) -> None:
    """Every suppressed address: source data, hard bounces and operators' stops."""
    import csv
    import io

    if out is None:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(app.suppress_rows())
        _echo(text.getvalue().rstrip("\n"))  # an operator's note may hold anything
        return
    written = app.suppress_list_csv(out, encoding)
    _echo(tr("wrote {n:,} rows to {path}", n=written.rows, path=out))
    _report_side_notes([], written.unencodable, encoding)


@cli.command("export-postal")
@campaign_option
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@as_of_option
@encoding_option(_WRITTEN_CSV)
@pass_app
def export_postal_cmd(
    app: App, campaign: Campaign, out: Path, as_of: date | None, encoding: str
) -> None:
    """The paper-mail list: My Page postal addresses of the campaign's accounts (SPEC §10)."""
    day = app.as_of(as_of)
    report = app.export_postal(campaign, out, as_of=day, encoding=encoding)
    for line in report.warning_lines():
        _echo(line, err=True)
    counts = ", ".join(f"{kind.value} {n:,}" for kind, n in report.counts.items()) or _("none")
    _echo(
        tr(
            "postal list of {campaign} as of {day}: {n:,} accounts",
            campaign=campaign.id,
            day=fmt_date(day),
            n=report.rows,
        )
    )
    _echo(f"  {counts}")
    _echo(tr("warnings: {n}", n=report.warning_count()))
    _echo(tr("wrote {path}", path=out))
    _report_side_notes([], report.unencodable, encoding)


@cli.command("test-send")
@campaign_option
@click.option("--to", "to", required=True, help="The only address that receives anything.")
@click.option("--email", default=None, help="Send the messages this recipient would get.")
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="Send N messages spread over audiences and reasons (default 3).",
)
@run_key_option
@as_of_option
@pass_app
def test_send_cmd(
    app: App,
    campaign: Campaign,
    to: str,
    email: str | None,
    sample: int | None,
    run_key: str | None,
    as_of: date | None,
) -> None:
    """Send real messages of chosen recipients to --to only, marked [TEST]; no ledger writes.

    Exit 0 when the relay accepted every copy, 3 when it refused or deferred one.
    """
    day = app.as_of(as_of)
    report = app.test_send(
        campaign, to, email=email, sample=sample, run_key=app.run_key(run_key, day), as_of=day
    )
    _echo(
        tr(
            "test send of {campaign} to {to} only (nothing recorded in the ledger)",
            campaign=campaign.id,
            to=report.to,
        )
    )
    for copy in report.sent:
        refused = not copy.accepted and copy.reply
        _echo(
            "  "
            + tr(
                "{status}: the message for {original} {message_id}",
                status=copy.status.value,
                original=copy.original_to,
                message_id=copy.message_id,
            )
            + (f" ({copy.reply})" if refused else "")
        )
    app.close()
    sys.exit(0 if report.all_accepted else 3)


@cli.command()
@click.option("--run", "run_id", type=RUN_ID, required=True, help="<campaign>/<run key>.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The HTML file to write (self-contained: open it anywhere, attach it to a mail).",
)
@pass_app
def report(app: App, run_id: str, out: Path) -> None:
    """The morning view of a run: one self-contained HTML page from the ledger."""
    written = app.report(run_id, out)
    state = _("finished") if written.finished else tr("{n:,} open", n=written.stats.open)
    _echo(
        tr(
            "wrote {path}: {run_id}, {n:,} deliveries, {state}",
            path=out,
            run_id=written.run.run_id,
            n=written.stats.total,
            state=state,
        )
    )


@cli.command()
@click.option("--run", "runs", type=RUN_ID, required=True, multiple=True, help="A, then B.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@encoding_option(_WRITTEN_CSV)
@pass_app
def diff(app: App, runs: tuple[str, ...], out: Path | None, encoding: str) -> None:
    """Who was added, removed or changed between two runs: `--run A --run B`."""
    if len(runs) != 2:
        raise InputError(_("give --run twice: the earlier run A, then run B"))
    run_a, run_b = runs
    if out is None:
        for text in app.diff_text(run_a, run_b):
            _echo(text)
        return
    summary, written = app.diff_csv(run_a, run_b, out, encoding)
    _echo(tr("wrote {n:,} rows to {path}", n=written.rows, path=out))
    _echo(summary)
    _report_side_notes([], written.unencodable, encoding)


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _on_sigterm)  # the process's own: not in CliRunner tests
    cli(prog_name="swmail")


if __name__ == "__main__":
    main()
