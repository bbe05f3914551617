"""The commands' entry points: what `run_campaign.py` calls, one method of `App` per command.

Owns: turning settings into engines, loading campaigns, building the composer, filling in the
defaults of SPEC §8 (as-of date = today in Asia/Tokyo, run key = the as-of date), calling the
stage that does the work and closing engines. The CLI only parses options and prints what these
return, so every command can also be driven from Python (tests, a scheduler) the same way.
Must not import: click or anything that prints; tools, tests (it is the last stage: every
other stage may be imported, lazily, so that `--help` needs no database driver).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.config.campaign import Campaign, load_campaign, resolve_campaign_path
from jobs.config.settings import Settings, load_settings
from jobs.i18n import _, tr
from jobs.logs import configure_logging

if TYPE_CHECKING:
    import sqlalchemy as sa

    from jobs.bounces.importer import ImportReport as BounceImportReport
    from jobs.delivery.coordinator import RunOutcome
    from jobs.delivery.nightly import NightlyReport
    from jobs.delivery.testsend import CopiesReport
    from jobs.delivery.worker import WorkerOutcome
    from jobs.ledger import Approval, RunRecord
    from jobs.ledger.suppressions import SuppressionEntry
    from jobs.messages.compose import Composed, Composer
    from jobs.reports.audit import CsvOut
    from jobs.reports.dryrun import DryRunReport
    from jobs.reports.morning import MorningReport
    from jobs.reports.postal import PostalReport
    from jobs.reports.status import RunStatus
    from jobs.resolution.explain import Explanation
    from jobs.resolution.pipeline import Resolved, Summary
    from jobs.source.importer import ImportReport

__all__ = [
    "App",
    "DbReady",
    "append_error_log",
    "configure_logging",
    "render_explanation",
    "render_preview",
    "render_provenance",
    "today_tokyo",
]


def today_tokyo() -> date:
    """SPEC §4: the as-of date defaults to today in Asia/Tokyo (the clock is read here only)."""
    from jobs.messages.compose import TOKYO

    return datetime.now(TOKYO).date()


def append_error_log(path: Path, text: str) -> None:
    """Append a bug's traceback to the error log, owner-only: it can quote names and addresses."""
    from jobs.files import append_private

    append_private(path, text)


def render_explanation(result: Explanation) -> str:
    """`explain`'s text (the stage's own wording)."""
    from jobs.ledger.suppressions import PROVENANCE_PHRASES, PROVENANCE_TEMPLATES
    from jobs.resolution.explain import render_text

    return render_text(result, PROVENANCE_TEMPLATES, PROVENANCE_PHRASES)


def render_provenance(sentence: str) -> str:
    """Where a suppression came from (the ledger's English sentence), in the operator's language."""
    from jobs.i18n import localize
    from jobs.ledger.suppressions import PROVENANCE_PHRASES, PROVENANCE_TEMPLATES

    return localize(sentence, PROVENANCE_TEMPLATES, PROVENANCE_PHRASES)


def render_preview(message: Composed) -> str:
    """`preview`'s decoded text (the stage's own wording)."""
    from jobs.messages.preview import render_preview as render

    return render(message)


@dataclass(frozen=True, slots=True)
class DbReady:
    """What `db init` prepared; URLs as shown to operators (password masked)."""

    database: str
    ledger: str | None  # None: the ledger lives in `database`


@dataclass
class App:
    """What every command needs, created lazily so `--help` works without a database."""

    config: Path | None
    env: Mapping[str, str] | None = None  # None: the process environment
    _engines: dict[str, sa.Engine] = field(default_factory=dict)

    # --- shared pieces ----------------------------------------------------------------------

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.config, self.env)

    def engine(self, url: str | None = None, *, create: bool = False) -> sa.Engine:
        """The engine of `url` (default: the source). Only `create=True` makes a SQLite file.

        Read-only by default: `status`, `resolve`, `explain`, `preview`, `dry-run` and
        `audit export` never create a database file or folder; `db init` and `db import` ask for
        `create`, and `run` for its ledger (a separate `ledger_url` is created on first use).
        """
        from jobs.source.engine import make_engine

        url = url or self.settings.database.url
        if url not in self._engines:
            self._engines[url] = make_engine(url, create=create)
        return self._engines[url]

    def ledger_engine(self, *, create: bool = False) -> sa.Engine:
        return self.engine(self.settings.database.effective_ledger_url, create=create)

    def campaign(self, value: str) -> Campaign:
        """`--campaign`: an id under `paths.campaigns` or a path to a campaign file."""
        return load_campaign(resolve_campaign_path(value, Path(self.settings.paths.campaigns)))

    def composer(self, campaign: Campaign, run_key: str, as_of: date) -> Composer:
        from jobs.delivery.launch import make_composer

        return make_composer(self.settings, campaign, run_key, as_of)

    def ledger_suppressions(self) -> frozenset[str]:
        """Hard bounces the job recorded (§7): part of the effective suppression list."""
        from jobs.ledger import ledger_suppressions

        ledger = self._existing_ledger()
        return frozenset() if ledger is None else ledger_suppressions(ledger)

    def _existing_ledger(self) -> sa.Engine | None:
        """The ledger for reading, or None when its separate database file does not exist yet
        (it then holds no bounces and no earlier runs)."""
        from jobs.source.engine import MissingDatabase

        try:
            return self.ledger_engine()
        except MissingDatabase:
            return None

    def already_sent(
        self, campaign: Campaign, run_key: str, *, resend: bool = False
    ) -> frozenset[str]:
        """§4 ALREADY_SENT's input: what earlier runs of a non-recurring campaign sent."""
        from jobs.ledger import already_sent_for

        ledger = self._existing_ledger()
        if ledger is None:
            return frozenset()
        return already_sent_for(ledger, campaign, run_key, resend=resend)

    def suppression_origin(self, key: str) -> list[str]:
        """Where a dedupe key's suppression came from, in words (`explain`, SPEC §10)."""
        from jobs.ledger.suppressions import entries_for
        from jobs.source.engine import MissingDatabase

        try:
            ledger = self.ledger_engine()
        except MissingDatabase:
            ledger = self.engine()  # a separate ledger not created yet: the source's list only
        return [e.provenance() for e in entries_for(ledger, self.engine(), key)]

    def redirect_notice(self) -> str | None:
        """§10: with `redirect_all_to` set, every run summary says so on its first line."""
        to = self.settings.message.redirect_all_to
        if not to:
            return None
        from jobs.i18n import tr

        return tr(
            "REDIRECTED: every message goes to {to} (message.redirect_all_to), none to its"
            " recipients",
            to=to,
        )

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    @staticmethod
    def as_of(value: date | None) -> date:
        return value if value is not None else today_tokyo()

    @staticmethod
    def run_key(value: str | None, as_of: date) -> str:
        """§7: the run key defaults to the as-of date (the CLI checked a given one)."""
        return value or as_of.isoformat()

    # --- one entry point per command --------------------------------------------------------

    def db_init(self) -> DbReady:
        """`db init`: the source tables (SPEC §3) and the ledger (Alembic); safe to repeat."""
        from jobs.ledger.migrate import upgrade
        from jobs.source.engine import shown_url
        from jobs.source.models import init_source_schema

        init_source_schema(self.engine(create=True))
        upgrade(self.ledger_engine(create=True))
        ledger = shown_url(self.ledger_engine()) if self.settings.database.ledger_url else None
        return DbReady(database=shown_url(self.engine()), ledger=ledger)

    def db_import(self, directory: Path, encoding: str) -> ImportReport:
        """`db import DIR`: replace the source data set, all or nothing."""
        from jobs.errors import InputError
        from jobs.source.importer import import_dir
        from jobs.source.models import init_source_schema

        if not directory.is_dir():
            raise InputError(tr("{directory}: no such folder", directory=directory))
        engine = self.engine(create=True)
        init_source_schema(engine)
        return import_dir(engine, directory, encoding)

    def resolve(self, campaign: Campaign, as_of: date, *, progress: bool) -> Resolved:
        """`resolve`: counts by decision, audience and reason."""
        from jobs.resolution.pipeline import resolve_campaign

        resolved = resolve_campaign(
            self.engine(),
            campaign,
            as_of,
            extra_suppressed=self.ledger_suppressions(),
            # as `run` with the default run key (the as-of date) would decide
            already_sent=self.already_sent(campaign, self.run_key(None, as_of)),
            progress=progress,
            keep_deliveries=False,  # the counts are all `resolve` prints
            in_parallel=self.settings.database.parallel_count,
        )
        resolved.close()
        return resolved

    def dry_run(
        self,
        campaign: Campaign,
        out: Path,
        *,
        run_key: str,
        as_of: date,
        encoding: str,
        progress: bool,
    ) -> DryRunReport:
        """`dry-run`: every message `run` would send, written to `out`; nothing sent."""
        from jobs.reports.dryrun import dry_run

        return dry_run(
            self.engine(),
            campaign,
            self.composer(campaign, run_key, as_of),
            out,
            as_of=as_of,
            extra_suppressed=self.ledger_suppressions(),
            already_sent=self.already_sent(campaign, run_key),
            encoding=encoding,
            progress=progress,
        )

    def explain(
        self,
        campaign: Campaign,
        as_of: date,
        *,
        email: str | None,
        corp_id: str | None,
        partner_id: str | None,
    ) -> Explanation:
        """`explain`: every rule that fired for a person or an account."""
        from jobs.errors import InputError
        from jobs.resolution.explain import explain

        if len([v for v in (email, corp_id, partner_id) if v]) != 1:
            raise InputError(_("give exactly one of --email, --corp-id, --partner-id"))
        return explain(
            self.engine(),
            campaign,
            as_of,
            email=email,
            corp_id=corp_id,
            partner_id=partner_id,
            extra_suppressed=self.ledger_suppressions(),
            suppression_origin=self.suppression_origin,
            # as `run` with the default run key (the as-of date) would decide
            already_sent=self.already_sent(campaign, self.run_key(None, as_of)),
        )

    def preview(
        self, campaign: Campaign, email: str, *, run_key: str, as_of: date
    ) -> list[Composed]:
        """`preview`: the message(s) one address would receive."""
        from jobs.messages.preview import preview_messages

        return preview_messages(
            self.engine(),
            campaign,
            self.composer(campaign, run_key, as_of),
            email,
            as_of=as_of,
            extra_suppressed=self.ledger_suppressions(),
        )

    def unfinished_run(self, campaign: Campaign, as_of: date) -> RunRecord | None:
        """§9: the campaign's unfinished run that `run` without `--run-key` resumes instead of
        starting the run of `as_of`; None when there is none, or it is that very run."""
        from jobs.ledger import check_ledger, unfinished_run

        ledger = self.ledger_engine(create=True)  # as `run` opens it
        check_ledger(ledger)
        with ledger.connect() as conn:
            found = unfinished_run(conn, campaign.id)
        return None if found is None or found.run_key == self.run_key(None, as_of) else found

    def run(
        self,
        campaign: Campaign,
        *,
        run_key: str,
        as_of: date,
        resend: bool = False,
        progress: bool,
    ) -> RunOutcome:
        """`run`: check the approval, freeze the run the first time, then send; resumable."""
        from jobs.delivery.launch import launch_run

        return launch_run(
            self.settings,
            self.engine(),  # the source must exist: `db init` and `db import` make it
            self.ledger_engine(create=True),
            campaign,
            run_key=run_key,
            as_of=as_of,
            resend=resend,
            progress=progress,
        )

    def approve(self, campaign: Campaign, *, run_key: str, as_of: date) -> tuple[Approval, Summary]:
        """`approve`: resolve as `run` would, record the fingerprint with the counts."""
        from jobs.delivery.approval import approve, fingerprint
        from jobs.ledger import check_ledger

        composer = self.composer(campaign, run_key, as_of)
        composer.check()
        check_ledger(self.ledger_engine(create=True))
        fp = fingerprint(
            campaign,
            composer.templates.folder,
            Path(self.settings.paths.templates),
            self.settings.message,
        )
        return approve(
            self.engine(),
            self.ledger_engine(),
            campaign,
            fp,
            run_key=run_key,
            as_of=as_of,
            extra_suppressed=self.ledger_suppressions(),
            already_sent=self.already_sent(campaign, run_key),
            in_parallel=self.settings.database.parallel_count,
        )

    def nightly(self, campaigns_dir: Path | None, now: datetime | None) -> NightlyReport:
        """`nightly`: every due campaign of the folder (default `paths.campaigns`) as of `now`."""
        from jobs.delivery.nightly import run_nightly

        folder = campaigns_dir or Path(self.settings.paths.campaigns)
        moment = now if now is not None else datetime.now(UTC)
        ledger = self.ledger_engine(create=True)  # as `run` opens it
        return run_nightly(self.settings, self.engine(), ledger, folder, moment)

    def send_alert(self, report: NightlyReport) -> str | None:
        """§9: one alert e-mail to `[alerts] to` when the night needs a person (none when all
        is well). Returns why it could not be sent, or None: the night's exit code stands."""
        from jobs.delivery.alerts import AlertFailed, nightly_alert, send_alert

        to = self.settings.alerts.to
        if not to or not report.needs_alert:
            return None
        try:
            send_alert(nightly_alert(report, to, self.settings.message), self.settings.smtp)
        except AlertFailed as exc:
            return exc.message
        return None

    @staticmethod
    def approve_command(campaign: Campaign, run_key: str, as_of: date) -> str:
        """The `approve` command line to run next (printed by `dry-run`)."""
        from jobs.delivery.approval import approve_command

        return approve_command(campaign, run_key, as_of)

    def report(self, run_id: str, out: Path) -> MorningReport:
        """`report`: the morning view of a run as one self-contained HTML page."""
        from jobs.reports.morning import write_report

        return write_report(self.ledger_engine(), run_id, out, generated=datetime.now(UTC))

    def diff_text(self, run_a: str, run_b: str) -> Iterator[str]:
        """`diff` without `--out`: one line per person whose decision or reasons differ."""
        from jobs.reports.diff import diff_text

        return diff_text(self.ledger_engine(), run_a, run_b)

    def diff_csv(self, run_a: str, run_b: str, out: Path, encoding: str) -> tuple[str, CsvOut]:
        """`diff --out FILE.csv`: the same people in the CSV conventions of §5; the totals."""
        from jobs.reports.diff import diff_runs, totals, write_diff

        counts, written = write_diff(diff_runs(self.ledger_engine(), run_a, run_b), out, encoding)
        return totals(run_a, run_b, counts), written

    def worker(self, run_id: str, *, progress: bool) -> WorkerOutcome:
        """`worker --run RUN_ID`: an extra sender for a frozen run (SPEC §9)."""
        from jobs.delivery.worker import run_worker

        def composer_for(run: RunRecord) -> Composer:
            # the frozen run renders with its own run key and as-of date, as `run` does
            return self.composer(self.campaign(run.campaign_id), run.run_key, run.as_of)

        return run_worker(
            self.ledger_engine(), run_id, composer_for, self.settings.smtp, progress=progress
        )

    def status(self, run_id: str | None) -> list[RunStatus]:
        """`status`: per run, deliveries by status."""
        from jobs.reports.status import run_status

        return run_status(self.ledger_engine(), run_id)

    def audit_export(self, run_id: str, out: Path, encoding: str) -> CsvOut:
        """`audit export`: the audit CSV of a run with each delivery's status."""
        from jobs.reports.status import export_audit

        return export_audit(self.ledger_engine(), run_id, out, encoding)

    # --- SPEC §10: bounces, suppressions, the postal list, test sends ------------------------

    def bounces_import(self, *, maildir: Path | None, mbox: Path | None) -> BounceImportReport:
        """`bounces import`: match a mailbox of bounces to deliveries and record them."""
        from jobs.bounces.importer import import_bounces
        from jobs.bounces.reader import read_maildir, read_mbox
        from jobs.errors import InputError
        from jobs.messages.verp import ReturnPath

        if maildir is not None and mbox is None:
            messages = read_maildir(maildir)
        elif mbox is not None and maildir is None:
            messages = read_mbox(mbox)
        else:
            raise InputError(_("give exactly one of --maildir DIR, --mbox FILE"))
        message = self.settings.message
        return_path = ReturnPath(message.return_path, message.verp_key())
        return import_bounces(self.ledger_engine(), messages, return_path)

    def suppress_add(self, email: str, reason: str, note: str) -> tuple[SuppressionEntry, bool]:
        """`suppress add`: (the entry, False when the address was on the job's list already)."""
        from jobs.ledger.suppressions import add_suppression
        from resolver.model import SuppressionReason

        return add_suppression(self.ledger_engine(), email, SuppressionReason(reason), note)

    def suppress_remove(self, email: str) -> tuple[SuppressionEntry, list[SuppressionEntry]]:
        """`suppress remove`: the entry lifted, and what still suppresses the address."""
        from jobs.ledger.suppressions import entries_for, remove_suppression

        entry = remove_suppression(self.ledger_engine(), self.engine(), email)
        return entry, entries_for(self.ledger_engine(), self.engine(), entry.email)

    def suppress_list(self) -> list[SuppressionEntry]:
        """`suppress list`: both lists, by address."""
        from jobs.ledger.suppressions import list_suppressions

        return list_suppressions(self.ledger_engine(), self.engine())

    def suppress_rows(self) -> list[tuple[str, ...]]:
        """`suppress list` without `--out`: the header and every row, formula-protected (§5)."""
        from jobs.ledger.suppressions import SUPPRESSION_COLUMNS
        from jobs.reports.audit import protect_formula

        rows = [tuple(protect_formula(c) for c in e.cells()) for e in self.suppress_list()]
        return [SUPPRESSION_COLUMNS, *rows]

    def suppress_list_csv(self, out: Path, encoding: str) -> CsvOut:
        """`suppress list --out FILE`: the list as a CSV file (SPEC §5 conventions)."""
        from jobs.ledger.suppressions import SUPPRESSION_COLUMNS
        from jobs.reports.audit import CsvOut

        with CsvOut(out, SUPPRESSION_COLUMNS, encoding) as written:
            for entry in self.suppress_list():
                written.write(entry.cells())
        return written

    def export_postal(
        self, campaign: Campaign, out: Path, *, as_of: date, encoding: str
    ) -> PostalReport:
        """`export-postal`: the paper-mail list of the campaign's accounts."""
        from jobs.reports.postal import export_postal

        return export_postal(self.engine(), campaign, out, as_of=as_of, encoding=encoding)

    def test_send(
        self,
        campaign: Campaign,
        to: str,
        *,
        email: str | None,
        sample: int | None,
        run_key: str,
        as_of: date,
    ) -> CopiesReport:
        """`test-send`: real messages of chosen recipients, to `to` only; no ledger writes."""
        import dataclasses

        from jobs.delivery.testsend import send_test_copies
        from jobs.errors import InputError
        from resolver.normalize import normalize_email

        if email is not None and sample is not None:
            raise InputError(_("give at most one of --email, --sample"))
        address = normalize_email(to).address
        if address is None:
            raise InputError(tr("--to {to!r} is not a valid e-mail address", to=to))
        composer = dataclasses.replace(self.composer(campaign, run_key, as_of), test_to=address)
        return send_test_copies(
            self.engine(),
            campaign,
            composer,
            self.settings.smtp,
            as_of=as_of,
            email=email,
            sample=3 if sample is None else sample,
            extra_suppressed=self.ledger_suppressions(),
        )
