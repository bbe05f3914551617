"""`status` and `audit export` (SPEC §5, §8): read the ledger, never in-memory counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from jobs.errors import NotFound
from jobs.i18n import N_, _, fmt_date, tr
from jobs.ledger import (
    DeliveryStatus,
    RunRecord,
    RunStats,
    check_ledger,
    get_run,
    iter_audit,
    list_runs,
    list_workers,
    stats,
)
from jobs.ledger.models import DeliveryRow
from jobs.ledger.values import AuditExportRow
from jobs.ledger.workers import WorkerStats
from jobs.reports.audit import AUDIT_COLUMNS, AuditLine, CsvOut
from resolver.model import join_reasons

__all__ = ["RunStatus", "export_audit", "find_run", "run_status"]

_ORDER = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.DEFERRED,
    DeliveryStatus.FAILED,
    DeliveryStatus.BOUNCED,  # §10: after `bounces import`
)


@dataclass
class RunStatus:
    run: RunRecord
    stats: RunStats
    first_sent: datetime | None
    last_sent: datetime | None
    workers: list[WorkerStats] = field(default_factory=list)  # claim owners (§9)

    @property
    def rate(self) -> float:
        """Messages per second between the first and the last confirmed delivery."""
        if self.first_sent is None or self.last_sent is None:
            return 0.0
        span = (self.last_sent - self.first_sent).total_seconds()
        # a bounced delivery was sent too: the bounce came back later (§10)
        accepted = self.stats[DeliveryStatus.SENT] + self.stats[DeliveryStatus.BOUNCED]
        return accepted / span if span > 0 else 0.0

    @property
    def state(self) -> str:
        if self.run.finished_at is not None:
            return "finished"
        return "in progress" if self.stats.open else "done"

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "campaign_id": self.run.campaign_id,
            "run_key": self.run.run_key,
            "as_of": self.run.as_of.isoformat(),
            "state": self.state,
            "created_at": self.run.created_at.isoformat(),
            "finished_at": self.run.finished_at.isoformat() if self.run.finished_at else None,
            "deliveries": self.stats.total,
            "counts": {s.value: self.stats[s] for s in _ORDER},
            "left": self.stats.open,
            "unconfirmed_resent": self.stats.unconfirmed,
            "possible_duplicates": self.stats.possible_duplicate,
            "messages_per_second": round(self.rate, 1),
            "coordinator": self.run.coordinator,
            "workers": [
                {
                    "id": w.id,
                    DeliveryStatus.SENT.value: w.sent,
                    DeliveryStatus.DEFERRED.value: w.deferred,
                    DeliveryStatus.FAILED.value: w.failed,
                    "last_seen": w.last_seen.isoformat(),
                }
                for w in self.workers
            ],
        }

    def text(self) -> str:
        """The run as an operator reads it; the status words stay the ledger's own (codes)."""
        counts = "  ".join(f"{s.value} {self.stats[s]:,}" for s in _ORDER)
        lines = [
            tr(
                "{run_id}  [{state}]  as of {day}",
                run_id=self.run.run_id,
                state=_(self.state),
                day=fmt_date(self.run.as_of),
            ),
            "  " + tr("{n:,} deliveries: {counts}", n=self.stats.total, counts=counts),
            "  " + tr("left: {n:,}", n=self.stats.open),
        ]
        if self.rate:
            lines.append("  " + tr("rate: {rate:,.1f} messages/s", rate=self.rate))
        if self.stats.unconfirmed or self.stats.possible_duplicate:
            lines.append(
                "  "
                + tr(
                    "resent after a crash: {n:,}; possible duplicates: {duplicates:,}",
                    n=self.stats.unconfirmed,
                    duplicates=self.stats.possible_duplicate,
                )
            )
        if self.run.coordinator:
            lines.append("  " + tr("last coordinator: {holder}", holder=self.run.coordinator))
        for w in self.workers:
            state = _("stopped") if w.stopped_at is not None else _("last seen")
            when = (w.stopped_at or w.last_seen).isoformat(timespec="seconds")
            label = w.id if w.id.startswith(w.role.value) else f"{w.role.value} {w.id}"
            lines.append(
                "  "
                + tr(
                    "{label}: sent {sent:,}  deferred {deferred:,}  failed {failed:,}  ({state}"
                    " {when})",
                    label=label,
                    sent=w.sent,
                    deferred=w.deferred,
                    failed=w.failed,
                    state=state,
                    when=when,
                )
            )
        return "\n".join(lines)


_STATE_WORDS = (N_("finished"), N_("in progress"), N_("done"))  # `state`, for the catalog


def _sent_span(conn: sa.Connection, run: RunRecord) -> tuple[Any, Any]:
    first, last = conn.execute(
        sa.select(sa.func.min(DeliveryRow.sent_at), sa.func.max(DeliveryRow.sent_at)).where(
            DeliveryRow.run_pk == run.pk
        )
    ).one()
    return first, last


def find_run(conn: sa.Connection, run_id: str) -> RunRecord:
    """The run RUN_ID, or NotFound (exit 2) naming the expected form."""
    run = get_run(conn, run_id)
    if run is None:
        raise NotFound(
            tr("no run {run_id!r} in the ledger (RUN_ID is <campaign>/<run key>)", run_id=run_id)
        )
    return run


def run_status(engine: sa.Engine, run_id: str | None) -> list[RunStatus]:
    check_ledger(engine)
    with engine.connect() as conn:
        runs = list_runs(conn) if run_id is None else [find_run(conn, run_id)]
        out = []
        for run in runs:
            first, last = _sent_span(conn, run)
            out.append(RunStatus(run, stats(conn, run), first, last, list_workers(conn, run)))
    return out


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def _line(row: AuditExportRow) -> AuditLine:
    return AuditLine(
        run_id=row.run_id,
        campaign_id=row.campaign_id,
        decision=row.decision.value,
        reasons=join_reasons(row.reasons),
        audience=row.audience.value,
        account_id=row.account_id,
        account_name=row.account_name,
        source=row.source.value,
        person_id=row.person_id,
        name=row.name,
        email=row.email,
        delivery_email=_cell(row.delivery_email),
        status=_cell(row.status.value if row.status is not None else None),
        attempts=_cell(row.attempts),
        # §10: a bounced delivery shows the DSN status (5.1.1) instead of the relay's 250
        last_smtp_code=row.dsn_status or _cell(row.last_smtp_code),
        last_error=_cell(row.last_error),
        message_id=_cell(row.message_id),
        sent_at=_cell(row.sent_at),
    )


def export_audit(engine: sa.Engine, run_id: str, out: Path, encoding: str) -> CsvOut:
    """Write the run's audit CSV; the file appears only when complete (`jobs.files`)."""
    check_ledger(engine)
    with engine.connect() as conn:
        run = find_run(conn, run_id)
        with CsvOut(out, AUDIT_COLUMNS, encoding) as csv_out:
            for row in iter_audit(conn, run):
                csv_out.write(_line(row).cells())
    return csv_out
