"""Progress goes to a terminal only: cron and scripts must see nothing but the summary."""

from __future__ import annotations

import io

from jobs.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_drawn_on_a_terminal_and_ends_with_a_newline() -> None:
    screen = Terminal()
    bar = Progress("resolving customers", total=2_000, stream=screen)
    for _ in range(2_000):
        bar.advance()
    bar.close()
    text = screen.getvalue()
    assert text.startswith("\rresolving customers: ")
    assert "2,000/2,000 (100.0%)" in text.rsplit("\r", 1)[-1]
    assert text.endswith("\n")


def test_progress_writes_nothing_when_not_a_terminal() -> None:
    redirected = io.StringIO()
    bar = Progress("sending", total=10, stream=redirected)
    for _ in range(10):
        bar.advance()
    bar.close()
    assert redirected.getvalue() == ""
