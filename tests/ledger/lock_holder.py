"""A coordinator stand-in for the lock tests: takes a run lock, says so, and waits to be killed.

Usage: python lock_holder.py DATABASE_URL RUN_ID
"""

from __future__ import annotations

import os
import sys
import time

from jobs.ledger import acquire_run_lock
from jobs.source.engine import make_engine


def main() -> None:
    url, run_id = sys.argv[1], sys.argv[2]
    engine = make_engine(url)
    with acquire_run_lock(engine, run_id):
        print(f"locked {os.getpid()}", flush=True)
        time.sleep(600)


if __name__ == "__main__":
    main()
