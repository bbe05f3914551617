"""The operator's CLI (SPEC §8): parses options, calls one `jobs` entry point, maps exit codes.

No policy lives here. `MailerError`s become one `Error: …` line on stderr and their exit code (2
input/config, 4 locked); anything else is a bug: exit 1, the traceback goes to the log file, the
operator gets one line that says where it is.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

import click
import sqlalchemy as sa

from jobs.config.settings import Settings, load_settings
from jobs.errors import MailerError

__all__ = ["cli", "main"]

ERROR_LOG = Path("var/log/swmail-errors.log")
log = logging.getLogger("swmail")


def _exit_with(error: MailerError) -> click.ClickException:
    """A `MailerError` as click shows it: `Error: <message>` and the error's exit code."""
    shown: type[click.ClickException] = type(
        f"{type(error).__name__}Exit", (click.ClickException,), {"exit_code": error.exit_code}
    )
    return shown(error.message)


def _internal_error(exc: BaseException) -> NoReturn:
    ERROR_LOG.parent.mkdir(parents=True, exist_ok=True)
    with ERROR_LOG.open("a", encoding="utf-8") as f:
        f.write(f"--- {datetime.now().isoformat()} {' '.join(sys.argv)}\n")
        f.write("".join(traceback.format_exception(exc)))
    click.echo(
        f"Internal error: {type(exc).__name__}: {exc} (traceback in {ERROR_LOG}); please report it",
        err=True,
    )
    sys.exit(1)


class MailerGroup(click.Group):
    """Turns the program's errors into exit codes in one place (like click's own `main`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MailerError as exc:
            raise _exit_with(exc) from exc
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            # 130 as shells report SIGINT; 1 is reserved for bugs (SPEC §8)
            click.echo(
                "Interrupted: what the server confirmed is recorded; run again to resume.",
                err=True,
            )
            sys.exit(130)
        except Exception as exc:  # a bug: the operator gets one line, the log the traceback
            _internal_error(exc)


@dataclass
class App:
    """What every command needs, created lazily so `--help` works without a database."""

    config: Path | None
    _engines: dict[str, sa.Engine] = field(default_factory=dict)

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config)

    def engine(self, url: str | None = None) -> sa.Engine:
        from jobs.source.engine import make_engine

        url = url or self.settings.database.url
        if url not in self._engines:
            self._engines[url] = make_engine(url)
        return self._engines[url]

    def ledger_engine(self) -> sa.Engine:
        return self.engine(self.settings.database.effective_ledger_url)

    def campaign(self, value: str) -> Any:
        from jobs.config.campaign import load_campaign, resolve_campaign_path

        return load_campaign(resolve_campaign_path(value, Path(self.settings.paths.campaigns)))

    def composer(self, campaign: Any, run_key: str, as_of: date) -> Any:
        from jobs.delivery.launch import make_composer

        return make_composer(self.settings, campaign, run_key, as_of)

    def ledger_suppressions(self) -> frozenset[str]:
        """Hard bounces the job recorded (§7): part of the effective suppression list."""
        from jobs.ledger import ledger_suppressions

        return ledger_suppressions(self.ledger_engine())

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()


pass_app = click.make_pass_decorator(App)


def _today_tokyo() -> date:
    from jobs.messages.compose import TOKYO

    return datetime.now(TOKYO).date()


def as_of_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--as-of",
        "as_of",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Resolve as of this date (YYYY-MM-DD; default: today in Asia/Tokyo).",
    )(f)


def campaign_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--campaign",
        "campaign",
        required=True,
        metavar="C",
        help="Campaign id (config/campaigns/<id>.toml) or path to a campaign file.",
    )(f)


_WRITTEN_CSV = "Encoding of the CSV files written (utf-8 gets a BOM for Excel)."


def encoding_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--encoding utf-8|cp932`: the two encodings Japanese Excel users need (SPEC §3, §5)."""
    return click.option(
        "--encoding",
        type=click.Choice(["utf-8", "cp932"]),
        default="utf-8",
        show_default=True,
        help=help_text,
    )


def _as_of(value: datetime | None) -> date:
    return value.date() if value is not None else _today_tokyo()


def _is_tty() -> bool:
    return sys.stderr.isatty()


def _stop_on_sigterm() -> None:
    """SIGTERM (systemd's stop, `kill`) stops like Ctrl-C: confirmed results kept, exit 130.

    Re-raised as SIGINT so that it takes the one path that is tested for Ctrl-C, asyncio's
    included (the sending pass cancels cleanly and gives back unsent claims).
    """
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))


def _already_sent(app: App, campaign: Any, run_key: str, resend: bool = False) -> frozenset[str]:
    """§4 ALREADY_SENT's input: what earlier runs of a non-recurring campaign sent."""
    from jobs.ledger import already_sent_for

    return already_sent_for(app.ledger_engine(), campaign, run_key, resend=resend)


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
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int, log_format: str) -> None:
    """SmileWorks announcement mailer: who receives each announcement, why, and sending it."""
    from jobs.logs import configure_logging

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
    from jobs.ledger.migrate import upgrade
    from jobs.source.models import init_source_schema

    init_source_schema(app.engine())
    upgrade(app.ledger_engine())
    click.echo(f"database ready: {app.engine().url.render_as_string(hide_password=True)}")
    if app.settings.database.ledger_url:
        shown = app.ledger_engine().url.render_as_string(hide_password=True)
        click.echo(f"ledger ready: {shown}")


@db.command("import")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@encoding_option("Encoding of the CSV files (cp932 for Excel exports).")
@pass_app
def db_import(app: App, directory: Path, encoding: str) -> None:
    """Load the CSV files of DIRECTORY (SPEC §3), replacing the data set; all or nothing."""
    from jobs.errors import InputError
    from jobs.source.importer import import_dir
    from jobs.source.models import init_source_schema

    if not directory.is_dir():
        raise InputError(f"{directory}: no such folder")
    engine = app.engine()
    init_source_schema(engine)
    report = import_dir(engine, directory, encoding)
    parts = ", ".join(f"{table} {n:,}" for table, n in report.counts.items())
    click.echo(f"imported {report.total_rows:,} rows in {report.elapsed_seconds:.2f}s: {parts}")
    if report.absent:
        click.echo(f"absent (empty): {', '.join(report.absent)}")


# --- resolution -------------------------------------------------------------------------------


def _print_summary(summary: Any) -> None:
    data = summary.as_json()
    click.echo(
        f"{data['candidates']:,} candidates in {data['accounts']:,} accounts → "
        f"{data['deliveries']:,} deliveries ({data['seconds']}s)"
    )
    for decision in ("send", "merged", "skip"):
        click.echo(f"  {decision:<7} {data['decisions'].get(decision, 0):>8,}")
    click.echo("by audience:")
    for audience, decisions in data["audiences"].items():
        cells = "  ".join(f"{d} {n:,}" for d, n in decisions.items())
        click.echo(f"  {audience:<23} {cells}")
    click.echo("by reason:")
    for reason, n in data["reasons"].items():
        click.echo(f"  {reason:<22} {n:>8,}")
    if data["excluded_by_filters"]:
        click.echo(f"outside the campaign's filters: {data['excluded_by_filters']:,}")
    if data["warnings"]:
        click.echo("warnings:")
        for code, n in data["warnings"].items():
            click.echo(f"  {code:<22} {n:>8,}")


@cli.command()
@campaign_option
@as_of_option
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@pass_app
def resolve(app: App, campaign: str, as_of: datetime | None, as_json: bool) -> None:
    """Count who would receive a campaign: by decision, audience and reason."""
    from jobs.resolution.pipeline import resolve_campaign

    chosen = app.campaign(campaign)
    day = _as_of(as_of)
    resolved = resolve_campaign(
        app.engine(),
        chosen,
        day,
        extra_suppressed=app.ledger_suppressions(),
        # as `run` with the default run key (the as-of date) would decide
        already_sent=_already_sent(app, chosen, _run_key(None, day)),
        progress=_is_tty(),
    )
    if as_json:
        out = {"campaign_id": chosen.id, "as_of": day.isoformat(), **resolved.summary.as_json()}
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        click.echo(f"campaign {chosen.id} as of {day.isoformat()}")
        _print_summary(resolved.summary)


def _run_key(run_key: str | None, day: date) -> str:
    from jobs.errors import InputError

    key = run_key or day.isoformat()  # §7: the run key defaults to the as-of date
    if "/" in key or not key.strip() or any(ch.isspace() for ch in key):
        raise InputError(f"--run-key {key!r} must be non-empty without '/' or spaces")
    return key


@cli.command("dry-run")
@campaign_option
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for audit.csv, warnings.csv and messages/<n>.eml.",
)
@click.option("--run-key", default=None, help="Run key (default: the as-of date).")
@as_of_option
@encoding_option(_WRITTEN_CSV)
@pass_app
def dry_run_cmd(
    app: App,
    campaign: str,
    out: Path,
    run_key: str | None,
    as_of: datetime | None,
    encoding: str,
) -> None:
    """Resolve and render every message to DIR as `run` would send them; send nothing."""
    from jobs.reports.dryrun import dry_run

    chosen = app.campaign(campaign)
    day = _as_of(as_of)
    key = _run_key(run_key, day)
    composer = app.composer(chosen, key, day)
    report = dry_run(
        app.engine(),
        chosen,
        composer,
        out,
        as_of=day,
        extra_suppressed=app.ledger_suppressions(),
        already_sent=_already_sent(app, chosen, key),
        encoding=encoding,
        progress=_is_tty(),
    )
    click.echo(f"dry run {report.run_id} as of {day.isoformat()} (nothing sent)")
    _print_summary(report.summary)
    click.echo(f"audit:    {out / 'audit.csv'}")
    click.echo(f"warnings: {out / 'warnings.csv'}")
    click.echo(f"messages: {out / 'messages'} ({report.messages:,} files)")
    if chosen.require_approval:
        from jobs.delivery.approval import approve_command

        click.echo(f"this campaign needs an approval; next: {approve_command(chosen, key, day)}")
    _report_side_notes(report.charset_fallbacks, report.unencodable, encoding)


def _report_side_notes(fallbacks: list[str], unencodable: list[Any], encoding: str) -> None:
    if fallbacks:
        click.echo(
            f"note: {len(fallbacks)} message(s) hold characters ISO-2022-JP cannot encode and "
            f"were built in UTF-8 instead, e.g. to {fallbacks[0]}",
            err=True,
        )
    if unencodable:
        first = unencodable[0]
        click.echo(
            f"note: {len(unencodable)} cell(s) cannot be written in {encoding} and hold '?' "
            f"instead; first at line {first.line}, column {first.column}: {first.value!r}. "
            "Use the default UTF-8 to keep every character.",
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
    campaign: str,
    email: str | None,
    corp_id: str | None,
    partner_id: str | None,
    as_of: datetime | None,
    as_json: bool,
) -> None:
    """Why a person or account does or does not receive a campaign, rule by rule."""
    from jobs.errors import InputError
    from jobs.resolution.explain import explain as run_explain
    from jobs.resolution.explain import render_text

    chosen = [v for v in (email, corp_id, partner_id) if v]
    if len(chosen) != 1:
        raise InputError("give exactly one of --email, --corp-id, --partner-id")
    chosen_campaign = app.campaign(campaign)
    day = _as_of(as_of)
    result = run_explain(
        app.engine(),
        chosen_campaign,
        day,
        email=email,
        corp_id=corp_id,
        partner_id=partner_id,
        extra_suppressed=app.ledger_suppressions(),
        # as `run` with the default run key (the as-of date) would decide
        already_sent=_already_sent(app, chosen_campaign, _run_key(None, day)),
    )
    if as_json:
        click.echo(json.dumps(result.as_json(), ensure_ascii=False, indent=2))
    else:
        click.echo(render_text(result))


@cli.command()
@campaign_option
@click.option("--email", required=True, help="The recipient's e-mail address.")
@click.option("--run-key", default=None, help="Run key (default: the as-of date).")
@as_of_option
@click.option("--raw", is_flag=True, help="Print the whole message as sent (RFC 5322 bytes).")
@pass_app
def preview(
    app: App,
    campaign: str,
    email: str,
    run_key: str | None,
    as_of: datetime | None,
    raw: bool,
) -> None:
    """Show the rendered message one recipient would receive."""
    from jobs.messages.preview import preview_messages, render_preview

    chosen = app.campaign(campaign)
    day = _as_of(as_of)
    composer = app.composer(chosen, _run_key(run_key, day), day)
    composed = preview_messages(
        app.engine(),
        chosen,
        composer,
        email,
        as_of=day,
        extra_suppressed=app.ledger_suppressions(),
    )
    for i, message in enumerate(composed):
        if i:
            click.echo("=" * 72)
        if raw:
            sys.stdout.flush()
            sys.stdout.buffer.write(message.data)
            sys.stdout.buffer.flush()
        else:
            click.echo(render_preview(message))


# --- sending ------------------------------------------------------------------------------------


@cli.command()
@campaign_option
@click.option("--run-key", default=None, help="Run key (default: the unfinished run, or as-of).")
@as_of_option
@click.option(
    "--resend",
    is_flag=True,
    help="Send again what earlier runs of this one-off campaign already sent (no ALREADY_SENT).",
)
@pass_app
def run(app: App, campaign: str, run_key: str | None, as_of: datetime | None, resend: bool) -> None:
    """Resolve (the first time) and send a campaign; run it again to resume.

    Without --run-key, an unfinished run of the campaign is resumed (and said so); otherwise the
    run key is the as-of date. Exit 0 when every delivery is sent or failed, 3 when deferred
    deliveries are left for the next run, 4 when another coordinator holds the run, 2 when a
    campaign that needs an approval has none that matches.
    """
    from jobs.delivery.launch import launch_run
    from jobs.ledger import check_ledger, unfinished_run

    chosen = app.campaign(campaign)
    day = _as_of(as_of)
    if run_key is None:
        check_ledger(app.ledger_engine())
        with app.ledger_engine().connect() as conn:
            open_run = unfinished_run(conn, chosen.id)
        if open_run is not None and open_run.run_key != _run_key(None, day):
            # §9: a second `run` the next day resumes instead of sending everything again
            click.echo(
                f"resuming the unfinished run {open_run.run_id} (as of "
                f"{open_run.as_of.isoformat()}) instead of starting {chosen.id}/"
                f"{day.isoformat()}; give --run-key to start another run"
            )
            run_key, day = open_run.run_key, open_run.as_of
    outcome = launch_run(
        app.settings,
        app.engine(),
        app.ledger_engine(),
        chosen,
        run_key=_run_key(run_key, day),
        as_of=day,
        resend=resend,
        progress=_is_tty(),
    )
    r = outcome.run
    verb = "resolved and froze" if outcome.created else "resumed"
    click.echo(f"run {r.run_id} ({verb}; as of {r.as_of.isoformat()})")
    if outcome.resolution is not None:
        _print_summary(outcome.resolution)
    p = outcome.pass_report
    click.echo(
        f"this pass: sent {p.sent:,}, deferred {p.deferred:,}, failed {p.failed:,} "
        f"in {p.seconds:.2f}s ({p.rate:,.0f} messages/s)"
    )
    if outcome.reset_in_flight:
        click.echo(
            f"resent after a crash: {outcome.reset_in_flight:,} deliveries were in flight "
            "(same Message-ID; at most these can arrive twice)"
        )
    if p.possible_duplicates:
        click.echo(
            f"possible duplicates: {p.possible_duplicates:,} (connection lost after the "
            "message body was sent, resent with the same Message-ID)"
        )
    if p.hard_bounces:
        click.echo(f"hard bounces added to the suppression list: {p.hard_bounces:,}")
    if p.relay_down:
        click.echo(f"relay down: {p.relay_down}")
    for line in p.first_errors:
        click.echo(f"  {line}", err=True)
    _print_status(outcome.stats)
    _report_side_notes(p.charset_fallbacks, [], "utf-8")
    app.close()
    sys.exit(outcome.exit_code)


@cli.command()
@campaign_option
@click.option("--run-key", default=None, help="Run key (default: the as-of date).")
@as_of_option
@pass_app
def approve(app: App, campaign: str, run_key: str | None, as_of: datetime | None) -> None:
    """Resolve, print the counts and record the approval of a run key (require_approval)."""
    from jobs.delivery.approval import approve as record_approval
    from jobs.delivery.approval import fingerprint
    from jobs.delivery.launch import make_composer
    from jobs.ledger import check_ledger

    chosen = app.campaign(campaign)
    day = _as_of(as_of)
    key = _run_key(run_key, day)
    composer = make_composer(app.settings, chosen, key, day)
    composer.check()
    check_ledger(app.ledger_engine())
    fp = fingerprint(
        chosen, composer.templates.folder, Path(app.settings.paths.templates), app.settings.message
    )
    approval, summary = record_approval(
        app.engine(),
        app.ledger_engine(),
        chosen,
        fp,
        run_key=key,
        as_of=day,
        extra_suppressed=app.ledger_suppressions(),
        already_sent=_already_sent(app, chosen, key),
    )
    click.echo(f"campaign {chosen.id} run key {key} as of {day.isoformat()}")
    _print_summary(summary)
    click.echo(
        f"approved by {approval.approved_by} (fingerprint {approval.fingerprint[:12]}; "
        f"refused later if the campaign file, templates or [message] settings change, or a send "
        f"count drifts more than {chosen.max_drift_percent:g}%)"
    )


def _now_option(value: str | None) -> datetime:
    from jobs.errors import InputError

    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--now {value!r} is not an ISO-8601 date-time") from None
    if parsed.tzinfo is None:
        raise InputError(f"--now {value!r} needs an offset, e.g. {value}+09:00")
    return parsed


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
    "now_text",
    default=None,
    metavar="DATETIME",
    help="Replay the clock: an ISO-8601 date-time with offset (tests, backfills).",
)
@pass_app
def nightly(app: App, campaigns_dir: Path | None, now_text: str | None) -> None:
    """Send every scheduled campaign that is due; one summary line per campaign (for cron).

    Exit code: the worst of the campaigns (1 > 2 > 4 > 3 > 0); 4 at once when another nightly
    holds this ledger. When any campaign is refused, expired, deferred, failed or broken, one
    summary e-mail goes to `[alerts] to`.
    """
    from jobs.delivery.alerts import AlertFailed, build_alert, send_alert
    from jobs.delivery.nightly import run_nightly

    now = _now_option(now_text)
    folder = campaigns_dir or Path(app.settings.paths.campaigns)
    report = run_nightly(app.settings, app.engine(), app.ledger_engine(), folder, now)
    lines = [line.text() for line in report.lines]
    for text in lines:
        click.echo(text)
    to = app.settings.alerts.to
    if report.needs_alert and to:
        flagged = [line for line in report.lines if line.alert]
        subject = (
            f"[swmail nightly] {len(flagged)} campaign(s) need attention "
            f"({now.astimezone(UTC):%Y-%m-%d %H:%M} UTC, exit {report.exit_code})"
        )
        body = [
            f"swmail nightly at {now.isoformat()} finished with exit code {report.exit_code}.",
            "",
            "Needs attention:",
            *(f"  {line.text()}" for line in flagged),
            "",
            "Every campaign:",
            *(f"  {text}" for text in lines),
            "",
            "Details: swmail status; swmail report --run RUN_ID --out FILE.html",
        ]
        alert = build_alert(to, app.settings.message, now=now, subject=subject, lines=body)
        try:
            send_alert(alert, app.settings.smtp)
        except AlertFailed as exc:
            # §9: the exit code stays that of the campaigns; the failure is said on stderr
            click.echo(f"alert: {exc.message}", err=True)
        else:
            log.debug("alert sent to %s", ", ".join(to))
    app.close()
    sys.exit(report.exit_code)


def _print_status(st: Any) -> None:
    counts = {s.value: n for s, n in st.counts.items()}
    order = ("pending", "sending", "sent", "deferred", "failed")
    cells = "  ".join(f"{s} {counts.get(s, 0):,}" for s in order)
    click.echo(f"ledger: {cells}")


@cli.command()
@click.option("--run", "run_id", default=None, metavar="RUN_ID", help="One run: <campaign>/<key>.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def status(app: App, run_id: str | None, as_json: bool) -> None:
    """Progress of runs: deliveries per status, what is left, how fast it went."""
    from jobs.reports.status import run_status

    rows = run_status(app.ledger_engine(), run_id)
    if as_json:
        click.echo(json.dumps([r.as_json() for r in rows], ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo("no runs yet")
    for r in rows:
        click.echo(r.text())


@cli.group()
def audit() -> None:
    """The audit trail of runs."""


@audit.command("export")
@click.option("--run", "run_id", required=True, metavar="RUN_ID", help="<campaign>/<run key>.")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@encoding_option(_WRITTEN_CSV)
@pass_app
def audit_export(app: App, run_id: str, out: Path, encoding: str) -> None:
    """Write the audit CSV of a run (SPEC §5) with each delivery's status."""
    from jobs.reports.status import export_audit

    written = export_audit(app.ledger_engine(), run_id, out, encoding)
    click.echo(f"wrote {written.rows:,} rows to {out}")
    _report_side_notes([], written.unencodable, encoding)


@cli.command()
@click.option("--run", "run_id", required=True, metavar="RUN_ID", help="<campaign>/<run key>.")
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
    from jobs.reports.morning import write_report

    written = write_report(app.ledger_engine(), run_id, out, generated=datetime.now(UTC))
    click.echo(
        f"wrote {out}: {written.run.run_id}, {written.stats.total:,} deliveries, "
        f"{'finished' if written.finished else f'{written.stats.open:,} open'}"
    )


@cli.command()
@click.option("--run", "runs", required=True, multiple=True, metavar="RUN_ID", help="A, then B.")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None)
@encoding_option(_WRITTEN_CSV)
@pass_app
def diff(app: App, runs: tuple[str, ...], out: Path | None, encoding: str) -> None:
    """Who was added, removed or changed between two runs: `--run A --run B`."""
    from jobs.errors import InputError
    from jobs.reports.diff import diff_runs, write_diff

    if len(runs) != 2:
        raise InputError("give --run twice: the earlier run A, then run B")
    run_a, run_b = runs
    lines = diff_runs(app.ledger_engine(), run_a, run_b)
    if out is not None:
        counts, written = write_diff(lines, out, encoding)
        click.echo(f"wrote {written.rows:,} rows to {out}")
        _report_side_notes([], written.unencodable, encoding)
    else:
        counts = {"added": 0, "removed": 0, "changed": 0}
        for line in lines:
            counts[line.change] += 1
            c = line.cells()
            click.echo(
                f"{c[0]:<8} {c[1]} {c[2]} {c[4]} {c[5]} {c[6]} <{c[7]}>: "
                f"{c[8] or '-'} [{c[9]}] → {c[10] or '-'} [{c[11]}]"
            )
    click.echo(f"{run_a} → {run_b}: " + ", ".join(f"{k} {n:,}" for k, n in counts.items()))


def main() -> None:
    """Console-script entry point."""
    _stop_on_sigterm()  # the process's own signal handling: not for in-process callers (tests)
    cli(prog_name="swmail")


if __name__ == "__main__":
    main()
