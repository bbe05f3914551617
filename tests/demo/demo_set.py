"""A generated demo folder read back with the csv module alone (no importer, no resolver)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from tools.demo_data import FILES


@dataclass(frozen=True)
class DemoSet:
    """One generated folder: each file's header and its rows as dicts (raw strings)."""

    directory: Path
    headers: dict[str, list[str]]
    rows: dict[str, list[dict[str, str]]]

    def __getitem__(self, file: str) -> list[dict[str, str]]:
        return self.rows[file]


def read_demo(directory: Path) -> DemoSet:
    headers: dict[str, list[str]] = {}
    rows: dict[str, list[dict[str, str]]] = {}
    for name in FILES:
        with (directory / name).open(encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader)
            headers[name] = header
            rows[name] = [dict(zip(header, record, strict=True)) for record in reader]
    return DemoSet(directory, headers, rows)
