"""Progress on stderr for long data jobs: click's bar in a terminal, plain lines elsewhere.

click's bar shows only its label when the output is not a terminal, which
tells someone tailing a log or a CI job nothing; there we print a line at
every tenth of the way instead.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

import click

#: Below this many items only the final line is printed when not in a terminal.
PLAIN_STEPS_FROM = 100


class Progress:
    """``with Progress("HabitLog", 5000) as bar: bar.advance(500)``."""

    def __init__(self, label: str, total: int, *, file: TextIO | None = None, enabled: bool = True):
        self.label = label
        self.total = max(int(total), 0)
        self.file = file if file is not None else sys.stderr
        self.enabled = enabled and self.total > 0
        self.done = 0
        self._bar = None
        self._last_tenth = 0

    def __enter__(self) -> Progress:
        if self.enabled and _is_terminal(self.file):
            self._bar = click.progressbar(
                length=self.total, label=self.label, file=self.file, show_pos=True, show_percent=True
            )
            self._bar.__enter__()
        return self

    def advance(self, count: int = 1) -> None:
        if not self.enabled or count <= 0:
            return
        self.done = min(self.done + count, self.total)
        if self._bar is not None:
            self._bar.update(count)
            return
        tenth = self.done * 10 // self.total
        if self.total >= PLAIN_STEPS_FROM and tenth > self._last_tenth and self.done < self.total:
            self._last_tenth = tenth
            self._line()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
        elif self.enabled and exc_type is None:
            self._line()

    def _line(self) -> None:
        percent = self.done * 100 // self.total
        click.echo(f"{self.label}: {self.done}/{self.total} ({percent}%)", file=self.file)


class Tally:
    """Progress of work whose total is unknown until it ends (records read page by page):
    ``with Tally("Reading HabitLog") as tally: tally.advance(100)``.

    In a terminal, one line counts up in place (and is cleared at the end, for the line
    that sums the work up); elsewhere a line every ``every`` items.
    """

    def __init__(self, label: str, *, unit: str = "records", every: int = 1000,
                 file: TextIO | None = None, enabled: bool = True):
        self.label, self.unit, self.every = label, unit, max(int(every), 1)
        self.file = file if file is not None else sys.stderr
        self.enabled = enabled
        self.done = 0
        self._terminal = False

    def __enter__(self) -> Tally:
        self._terminal = self.enabled and _is_terminal(self.file)
        return self

    def advance(self, count: int) -> None:
        if not self.enabled or count <= 0:
            return
        before, self.done = self.done, self.done + count
        if self._terminal:
            self.file.write(f"\r{self.label}: {self.done} {self.unit}")
            self.file.flush()
        elif self.done // self.every > before // self.every:
            click.echo(f"{self.label}: {self.done} {self.unit} so far", file=self.file)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._terminal and self.done:
            self.file.write("\r\x1b[K")  # back to the start of the line, and clear it
            self.file.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
