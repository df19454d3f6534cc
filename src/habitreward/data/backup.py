"""``habitreward backup``: a consistent copy of a live SQLite database.

SQLite's online backup API (``sqlite3.Connection.backup``) copies pages while
the bot keeps writing. Copied in steps, a backup starts over whenever another
connection writes between two steps; so after a few restarts the rest is
copied in one step, inside one read transaction (under WAL the bot's writers
are not blocked by it). The copy goes to a temporary file next to the target
and is renamed into place only after ``PRAGMA integrity_check`` passed, so
PATH never holds a half-written backup.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from habitreward.data.progress import Progress
from habitreward.errors import HabitRewardError

PAGES_PER_STEP = 256
MAX_RESTARTS = 3


class BackupError(HabitRewardError):
    pass


@dataclass(frozen=True)
class BackupResult:
    path: Path
    pages: int
    bytes: int
    restarts: int
    single_step: bool


class _TooBusy(Exception):
    """Raised from the progress callback to stop a stepwise backup that keeps restarting."""


def backup_sqlite(
    source: str | Path,
    target: str | Path,
    *,
    overwrite: bool = False,
    progress_file: TextIO | None = None,
    show_progress: bool = True,
    pages_per_step: int = PAGES_PER_STEP,
) -> BackupResult:
    """Copy the SQLite database at ``source`` to ``target`` while it is in use."""
    source, target = Path(source), Path(target)
    if not source.is_file():
        raise BackupError(f"There is no SQLite database at {source}.")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} already exists: choose another path or pass --force.")
    if target.resolve() == source.resolve():
        raise BackupError("The backup must go to another file than the database itself.")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a directory: create it first, or choose another path.")
    partial = target.with_name(f".{target.name}.partial")
    partial.unlink(missing_ok=True)

    state = {"last_done": 0, "restarts": 0, "bar": None}

    def on_progress(status: int, remaining: int, total: int) -> None:
        done = total - remaining
        if done < state["last_done"]:  # another connection wrote: SQLite started over
            state["restarts"] += 1
            if state["restarts"] > MAX_RESTARTS:
                raise _TooBusy
        if state["bar"] is None:
            state["bar"] = Progress(f"Backing up {source.name}", total, file=progress_file, enabled=show_progress)
            state["bar"].__enter__()
        bar: Progress = state["bar"]
        if done < bar.done:  # keep the bar honest after a restart
            bar.done = 0
        bar.advance(done - bar.done)
        state["last_done"] = done

    # mode=ro: the backup can never change the live database.
    live = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(partial)
    single_step = False
    try:
        try:
            live.backup(copy, pages=pages_per_step, progress=on_progress)
        except _TooBusy:
            single_step = True
            live.backup(copy, pages=-1)
        finally:
            if state["bar"] is not None:
                state["bar"].__exit__(None, None, None)
        # A self-contained file: no -wal/-shm companions needed to open it.
        copy.execute("PRAGMA journal_mode=DELETE")
        problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            raise BackupError(f"The copy failed its integrity check: {'; '.join(problems[:3])}")
        pages = copy.execute("PRAGMA page_count").fetchone()[0]
    except sqlite3.Error as exc:
        copy.close()
        partial.unlink(missing_ok=True)
        raise BackupError(f"Backup failed: {exc}") from None
    except BaseException:
        copy.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        live.close()
    copy.close()
    os.replace(partial, target)
    return BackupResult(target, pages, target.stat().st_size, state["restarts"], single_step)
