"""One coordinator per run (SPEC §7, §8 exit 4), through the CLI, on each real database.

While a `run` is sending through a slow server, a second `run` of the same RUN_ID must exit 4 at
once, naming the holder's pid, without resolving or sending anything. Once the holder is killed
the run resumes immediately: the lock died with its process.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.run.conftest import (
    RUN_ID,
    ScriptedHandler,
    Site,
    numbered_addresses,
    received_per_address,
    wait_until,
    write_people,
)
from tests.smtpd import SmtpServer, Stall

DELIVERIES = 40


@pytest.mark.slow
def test_a_second_coordinator_exits_4_naming_the_holder(
    db_url: str,
    make_site: Callable[..., Site],
    smtp_server: Callable[..., SmtpServer],
    tmp_path: Path,
) -> None:
    handler = ScriptedHandler(data=Stall(0.2))  # one connection: the run takes ~8 s
    server = smtp_server(handler)
    site = make_site(db_url)
    site.prepare(write_people(tmp_path / "data", numbered_addresses(DELIVERIES)))
    holder = site.spawn(*site.run_args(), server=server, connections=1)
    wait_until(lambda: len(handler.bodies) >= 1, 60, "the first run to start sending")

    second = site.cli(*site.run_args(), server=server, connections=1)

    assert second.returncode == 4, second.stderr
    assert f"run {RUN_ID} is held by" in second.stderr
    assert f"pid {holder.pid} " in second.stderr
    assert second.stdout == ""  # it neither resolved nor sent: nothing to report
    assert holder.poll() is None  # the holder was not disturbed

    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(10)
    handler.data = ()
    resumed = site.cli(*site.run_args(), server=server, connections=1)
    assert resumed.returncode == 0, resumed.stderr
    assert set(received_per_address(handler.messages)) == set(numbered_addresses(DELIVERIES))
