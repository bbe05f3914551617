"""The delivery ledger (SPEC §7): the job's own tables, on SQLite, PostgreSQL or MariaDB.

A run freezes its resolution here once; senders then claim deliveries, send them and record each
confirmed outcome, so that a crash loses nothing and a resume never resends a `sent` delivery.
Modules: `models` (tables), `migrate` (Alembic, from code), `store` (runs and the freeze),
`queue` (passes, claims, results), `workers` (claim owners, leases, the run-wide pace), `report`
(status, audit export), `lock` (one coordinator), `history` (earlier runs of a campaign: already
sent, unfinished, approvals, expired occurrences).

Owns: every read and write of the `swmail_*` tables, and the run locks.
Must not import: `jobs.resolution`, `jobs.messages`, `jobs.smtp`, `jobs.delivery`, `jobs.reports`
(it stores what those stages decided; it never decides).
"""

from jobs.config.runs import make_run_id
from jobs.ledger.history import (
    Approval,
    already_sent_for,
    already_sent_keys,
    get_approval,
    record_expired,
    run_is_finished,
    save_approval,
    unfinished_run,
)
from jobs.ledger.lock import RunLock, acquire_run_lock, holder_description
from jobs.ledger.migrate import (
    check_ledger,
    current_revision,
    head_revision,
    ledger_exists,
    schema_diff,
    upgrade,
)
from jobs.ledger.models import WorkerRole
from jobs.ledger.queue import QueueState, begin_pass, claim, queue_state, record, release
from jobs.ledger.report import (
    iter_audit,
    iter_warnings,
    ledger_suppressions,
    load_suppression_keys,
    stats,
)
from jobs.ledger.store import create_run, finish_run, get_run, list_runs
from jobs.ledger.values import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    AuditExportRow,
    ClaimedDelivery,
    DeliveryResult,
    DeliveryStatus,
    PassInfo,
    RunRecord,
    RunStats,
)
from jobs.ledger.workers import (
    WorkerStats,
    heartbeat,
    list_workers,
    register_worker,
    reserve_pace,
    stop_worker,
    take_back,
)

__all__ = [
    "FINAL_STATUSES",
    "OPEN_STATUSES",
    "Approval",
    "AuditExportRow",
    "ClaimedDelivery",
    "DeliveryResult",
    "DeliveryStatus",
    "PassInfo",
    "QueueState",
    "RunLock",
    "RunRecord",
    "RunStats",
    "WorkerRole",
    "WorkerStats",
    "acquire_run_lock",
    "already_sent_for",
    "already_sent_keys",
    "begin_pass",
    "check_ledger",
    "claim",
    "create_run",
    "current_revision",
    "finish_run",
    "get_approval",
    "get_run",
    "head_revision",
    "heartbeat",
    "holder_description",
    "iter_audit",
    "iter_warnings",
    "ledger_exists",
    "ledger_suppressions",
    "list_runs",
    "list_workers",
    "load_suppression_keys",
    "make_run_id",
    "queue_state",
    "record",
    "record_expired",
    "register_worker",
    "release",
    "reserve_pace",
    "run_is_finished",
    "save_approval",
    "schema_diff",
    "stats",
    "stop_worker",
    "take_back",
    "unfinished_run",
    "upgrade",
]
