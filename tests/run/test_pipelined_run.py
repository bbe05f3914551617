"""A whole `run` through a relay that offers PIPELINING (Postfix's smtp-sink, dumping to files).

The send path keeps several messages per connection in flight and groups each end of data with
the next message's commands; every delivery must still arrive exactly once, with its own
Message-ID and recipient, and be recorded `sent`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from jobs.ledger import DeliveryStatus
from tests.run.conftest import Site, numbered_addresses, write_people
from tools.postfix import PostfixTools, SinkProcess

DELIVERIES = 120


@pytest.mark.slow
def test_a_run_through_a_pipelining_relay_sends_every_delivery_once(
    make_site: Callable[..., Site],
    sqlite_url: str,
    tmp_path: Path,
    postfix: PostfixTools,
    dump_dir: Path,
) -> None:
    site = make_site(sqlite_url)
    addresses = numbered_addresses(DELIVERIES)
    site.prepare(write_people(tmp_path / "data", addresses))

    with SinkProcess(postfix, "-d", f"{dump_dir}/%M.") as sink:
        outcome = site.run(None, host=sink.host, port=sink.port, connections=2)

    assert outcome.exit_code == 0
    assert outcome.pass_report.sent == DELIVERIES
    assert set(site.statuses().values()) == {DeliveryStatus.SENT}
    dumps = [p.read_text(errors="replace") for p in dump_dir.iterdir()]
    recipients = sorted(
        m.group(1) for d in dumps for m in re.finditer(r"^X-Rcpt-Args: <([^>]+)>", d, re.M)
    )
    assert recipients == sorted(addresses)
    message_ids = {m.group(1) for d in dumps for m in re.finditer(r"^Message-ID: (\S+)", d, re.M)}
    assert len(message_ids) == DELIVERIES
