"""Binding a serving process to one CPU core (``serve --pin-cpu``).

A habitreward process runs Python on one core at a time (the interpreter lock), yet its
threads (waitress's, the bot loop's, the database workers') hand that lock to each other
thousands of times a second. Spread over cores by the scheduler, each hand-over wakes a
thread on another core (an inter-processor interrupt, dear under virtualization) whose
caches are cold. Bound to one core, where a hand-over is a local switch, one process took
24-30% less CPU per update (bench/webhook.py, SQLite and PostgreSQL), two workers 10% less.
The other cores stay free for the rest of the machine (PostgreSQL, the other workers),
which the scheduler still moves around.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from habitreward.db import flock_until
from habitreward.errors import ConfigError

logger = logging.getLogger("habitreward.serve")


@dataclass(frozen=True)
class CpuChoice:
    """What ``--pin-cpu`` says: ``auto``, ``off``, or the cores to choose from."""

    mode: str  # "auto" | "off" | "cores"
    cores: tuple[int, ...] = ()

    def __str__(self) -> str:  # as given on a command line (a worker's, say)
        return ",".join(map(str, self.cores)) if self.mode == "cores" else self.mode


AUTO = CpuChoice("auto")
OFF = CpuChoice("off")


def parse_cpu_choice(text: str) -> CpuChoice:
    """``auto``, ``off``, or a list of cores like ``0,2-3``; ValueError says what is wrong."""
    value = text.strip().lower()
    if value in ("auto", "off"):
        return AUTO if value == "auto" else OFF
    cores: list[int] = []
    for part in value.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last if dash else first)
        except ValueError:
            raise ValueError(f"{text!r} is not auto, off or a list of CPU numbers like 0,2-3") from None
        if low < 0 or high < low or high >= 1 << 16:
            raise ValueError(f"{part.strip()!r} is not a CPU number or a range like 2-3")
        cores.extend(core for core in range(low, high + 1) if core not in cores)
    return CpuChoice("cores", tuple(cores))


def candidate_cores(choice: CpuChoice) -> list[int]:
    """The cores ``choice`` lets serving processes take (none: leave them to the scheduler);
    ConfigError for cores not available to this process."""
    if choice.mode == "off":
        return []
    if not hasattr(os, "sched_setaffinity"):
        if choice.mode == "cores":
            raise ConfigError("--pin-cpu with a list of CPUs needs Linux (HABITREWARD_PIN_CPU)")
        return []
    allowed = sorted(os.sched_getaffinity(0))
    if choice.mode == "cores":
        unknown = [core for core in choice.cores if core not in allowed]
        if unknown:
            raise ConfigError(f"--pin-cpu: CPU {', '.join(map(str, unknown))} is not available to this process"
                              f" (available: {', '.join(map(str, allowed))}) (HABITREWARD_PIN_CPU)")
        return list(choice.cores)
    return allowed if len(allowed) > 1 else []  # one core: bound already (a container's cpuset, taskset)


def pin_process(choice: CpuChoice, worker: int | None = None) -> int | None:
    """Bind every thread of this process (and those it starts later) to one core.

    ``worker``: the number (1, 2, ...) of a ``serve --workers`` worker, which takes the
    worker-th core of the choice, so workers spread over the cores. A single process takes
    a core no other ``habitreward serve`` on this machine is bound to, if any: the first
    listed such core, or (``auto``) the core it runs on if free (the processes of one user
    look and bind one at a time, see :func:`choice_lock_path`). Returns the core, or None
    when the process is left to the scheduler (``off``, one core only, or no affinity API).
    """
    candidates = candidate_cores(choice)
    if not candidates:
        return None
    if worker is not None:
        core = candidates[(worker - 1) % len(candidates)]
        bound = _bind_this_thread(core)
    else:
        # Separate `serve` processes on one machine (PostgreSQL; a systemd template's instances
        # sharing one HABITREWARD_PIN_CPU list) must not share a core by chance: they look and
        # bind one at a time, so each sees the cores the others took.
        with _turn_to_choose():
            taken = _cores_of_other_serves()
            free = [core for core in candidates if core not in taken] or candidates
            current = _current_core() if choice.mode == "auto" else None
            core = current if current in free else free[0]
            bound = _bind_this_thread(core)
    if not bound:
        return None
    for thread_id in _thread_ids():
        try:
            os.sched_setaffinity(thread_id, {core})
        except OSError:  # it ended meanwhile
            continue
    logger.info("bound to CPU %d (--pin-cpu %s)", core, choice)
    return core


def _bind_this_thread(core: int) -> bool:
    """Bind the calling thread (those it starts inherit it); False where that is not allowed."""
    try:
        os.sched_setaffinity(0, {core})
        return True
    except OSError as exc:  # a sandbox, say: run as before
        logger.warning("could not bind to CPU %d (%s); leaving it to the scheduler", core, exc)
        return False


def choice_lock_path() -> Path:
    """The lock file that makes this user's ``serve`` processes choose their cores one at a
    time: in /dev/shm, which systemd's PrivateTmp= does not make private per service."""
    shared = Path("/dev/shm")
    return (shared if shared.is_dir() else Path(tempfile.gettempdir())) / f"habitreward-pin-cpu-{os.getuid()}.lock"


@contextlib.contextmanager
def _turn_to_choose(timeout: float = 5.0) -> Iterator[None]:
    """Hold :func:`choice_lock_path` (waiting up to ``timeout``, then going ahead anyway)."""
    try:
        fd = os.open(choice_lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # no lock file to be had: choose alone
        yield
        return
    try:
        flock_until(fd, time.monotonic() + timeout, longest_pause=0.01)  # not had in time: go ahead
        yield
    finally:
        os.close(fd)  # lets the lock go


def _thread_ids() -> list[int]:
    """This process's threads (none where /proc is not there to list them)."""
    try:
        return [int(name) for name in os.listdir("/proc/self/task")]
    except OSError:
        return []


def _cores_of_other_serves() -> set[int]:
    """The cores other ``habitreward serve`` processes of this machine are bound to, as far
    as /proc shows them (a process bound to several cores takes none)."""
    taken: set[int] = set()
    own = os.getpid()
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit() and int(name) != own]
    except OSError:
        return taken
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                words = cmdline.read().split(b"\0")
            if not any(word.endswith(b"habitreward") for word in words) or b"serve" not in words:
                continue
            cores = os.sched_getaffinity(pid)
        except OSError:  # gone meanwhile, or not ours to look at
            continue
        if len(cores) == 1:
            taken |= cores
    return taken


def _current_core() -> int | None:
    """The core this thread runs on now (field 39 of /proc/self/stat), if it can be read."""
    try:
        with open("/proc/thread-self/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        return int(fields[36])
    except (OSError, ValueError, IndexError):
        return None
