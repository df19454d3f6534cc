"""``serve --pin-cpu``: each serving process, every thread of it, bound to one CPU core.

The binding is read back from ``/proc/<pid>/task/*/status`` (``Cpus_allowed_list``): what the
kernel will schedule each thread on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from habitreward.errors import ConfigError
from habitreward.server.affinity import AUTO, OFF, CpuChoice, parse_cpu_choice, pin_process
from test_serve_kit import HABITREWARD_BIN, ServeProcess, wait_until, worker_pids

CORES = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
linux_only = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"),
                                reason="binding to a core is Linux's (sched_setaffinity)")
needs_two_cores = pytest.mark.skipif(
    len(CORES) < 2 or not Path("/proc/self/task").is_dir(),
    reason="binding to one core shows only on Linux with at least two CPUs available to the tests")


def thread_cores(pid: int) -> set[str]:
    """The distinct ``Cpus_allowed_list`` values of the process's threads ("0", "0-1", ...)."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        found.add(status.split("Cpus_allowed_list:")[1].split()[0])
    return found


def all_cores() -> str:
    return f"{CORES[0]}-{CORES[-1]}" if CORES == list(range(CORES[0], CORES[-1] + 1)) else ",".join(map(str, CORES))


@pytest.mark.no_db
@pytest.mark.parametrize(("text", "expected"), [
    ("auto", AUTO), ("OFF", OFF), ("3", CpuChoice("cores", (3,))),
    ("0,2-3", CpuChoice("cores", (0, 2, 3))), (" 1 , 1-2 ", CpuChoice("cores", (1, 2))),
])
def test_the_choice_reads_auto_off_and_lists_of_cores(text, expected):
    assert parse_cpu_choice(text) == expected
    assert parse_cpu_choice(str(expected)) == expected  # as passed on to a worker's command line


@pytest.mark.no_db
@pytest.mark.parametrize(("text", "message"), [
    ("fast", "is not auto, off or a list of CPU numbers"), ("3-1", "'3-1' is not a CPU number or a range"),
    ("1,,2", "is not auto, off or a list"), ("-1", "is not auto, off or a list"),
    ("0-99999999", "'0-99999999' is not a CPU number or a range"),
])
def test_a_bad_choice_says_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message):
        parse_cpu_choice(text)


def skip_unless_a_core_is_free_besides(core: int, *, also: tuple[int, ...] = ()) -> None:
    """Skip when ``habitreward serve`` processes outside the tests (a bot running on this
    machine) are bound to every core but ``core`` (no core would be left for the one under
    test), or to one of ``also`` (cores the test needs free)."""
    from habitreward.server.affinity import _cores_of_other_serves

    taken = _cores_of_other_serves()
    if not set(CORES) - taken - {core} or taken & set(also):
        pytest.skip(f"other habitreward serve processes on this machine are bound to CPU "
                    f"{', '.join(map(str, sorted(taken)))}: no core is left free to choose")


def another_serve_bound_to(core: int) -> subprocess.Popen:
    """A process that looks like a ``habitreward serve`` to /proc, bound to ``core`` (kill it)."""
    code = f"import os, time; os.sched_setaffinity(0, {{{core}}}); print('bound', flush=True); time.sleep(60)"
    other = subprocess.Popen([sys.executable, "-c", code, "habitreward", "serve"], stdout=subprocess.PIPE, text=True)
    assert other.stdout.readline().strip() == "bound"
    return other


def pinned_in_a_new_process(choice: str, worker: int | None, start_on: int | None = None) -> dict:
    """Run pin_process in a fresh interpreter with a thread started before and one after it;
    the core it chose and each thread's allowed cores (the tests' own process stays unbound).
    ``start_on``: the core it runs on when pin_process starts (it may still use all)."""
    code = textwrap.dedent(f"""
        import json, os, threading
        from habitreward.server.affinity import parse_cpu_choice, pin_process
        if {start_on!r} is not None:
            allowed = os.sched_getaffinity(0)
            os.sched_setaffinity(0, {{{start_on!r}}})  # moves there at once
            os.sched_setaffinity(0, allowed)  # and stays, as nothing makes it move
        stop = threading.Event()
        before = threading.Thread(target=stop.wait); before.start()
        core = pin_process(parse_cpu_choice({choice!r}), {worker!r})
        after = threading.Thread(target=stop.wait); after.start()
        threads = [t.native_id for t in (threading.main_thread(), before, after)]
        print(json.dumps({{"core": core, "threads": [sorted(os.sched_getaffinity(t)) for t in threads]}}))
        stop.set()
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.no_db
@needs_two_cores
def test_every_thread_is_bound_to_the_one_core_chosen_those_started_before_too():
    result = pinned_in_a_new_process("auto", None)
    assert result["core"] in CORES
    assert result["threads"] == [[result["core"]]] * 3


@pytest.mark.no_db
@needs_two_cores
def test_workers_take_the_cores_in_turn():
    assert [pinned_in_a_new_process("auto", n)["core"] for n in (1, 2, len(CORES) + 1)] == [CORES[0], CORES[1],
                                                                                         CORES[0]]
    listed = f"{CORES[-1]},{CORES[0]}"
    assert [pinned_in_a_new_process(listed, n)["core"] for n in (1, 2)] == [CORES[-1], CORES[0]]


@pytest.mark.no_db
@needs_two_cores
def test_separate_processes_given_one_list_take_its_cores_in_turn():
    """A systemd template's instances sharing HABITREWARD_PIN_CPU=a,b: the first takes a, the
    second b."""
    listed = f"{CORES[-1]},{CORES[0]}"
    skip_unless_a_core_is_free_besides(CORES[-1], also=(CORES[-1], CORES[0]))
    assert pinned_in_a_new_process(listed, None)["core"] == CORES[-1]  # alone: the first listed
    other = another_serve_bound_to(CORES[-1])
    try:
        assert pinned_in_a_new_process(listed, None)["core"] == CORES[0]
    finally:
        other.kill()
        other.wait(10)


@pytest.mark.no_db
@needs_two_cores
@pytest.mark.parametrize("index", [0, -1])
def test_a_single_process_takes_a_core_no_other_serve_on_the_machine_is_bound_to(index):
    """Separate serve processes (PostgreSQL) each take a core of their own."""
    other_core = CORES[index]
    skip_unless_a_core_is_free_besides(other_core)
    other = another_serve_bound_to(other_core)
    try:
        assert pinned_in_a_new_process("auto", None, start_on=other_core)["core"] != other_core
    finally:
        other.kill()
        other.wait(10)


@pytest.mark.no_db
@needs_two_cores
def test_serve_processes_of_a_user_choose_their_cores_one_at_a_time():
    """Two starting at the same moment: the second looks once the first is bound (the lock
    is held here while another "serve" binds itself to the core the new process runs on)."""
    import fcntl

    from habitreward.server.affinity import choice_lock_path

    other_core = CORES[0]
    skip_unless_a_core_is_free_besides(other_core)
    lock = os.open(choice_lock_path(), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    code = textwrap.dedent(f"""
        import os
        from habitreward.server.affinity import AUTO, pin_process
        allowed = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {{{other_core}}}); os.sched_setaffinity(0, allowed)  # runs there
        print("choosing", flush=True)
        print(pin_process(AUTO), flush=True)
    """)
    chooser = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    other = None
    try:
        assert chooser.stdout.readline().strip() == "choosing"
        time.sleep(0.3)  # it would have looked by now, were it not waiting for its turn
        other = another_serve_bound_to(other_core)
        os.close(lock)  # its turn
        lock = None
        assert int(chooser.stdout.readline()) != other_core
    finally:
        if lock is not None:
            os.close(lock)
        chooser.kill()
        chooser.wait(10)
        if other is not None:
            other.kill()
            other.wait(10)


@pytest.mark.no_db
@linux_only
def test_off_leaves_every_thread_to_the_scheduler():
    result = pinned_in_a_new_process("off", None)
    assert result["core"] is None
    assert result["threads"] == [CORES] * 3


@pytest.mark.no_db
@linux_only
def test_a_core_not_available_is_a_one_line_error():
    message = r"CPU 4096 is not available to this process \(available: .*HABITREWARD_PIN_CPU"
    with pytest.raises(ConfigError, match=message):
        pin_process(CpuChoice("cores", (4096,)))


@needs_two_cores
def test_serve_binds_itself_and_its_workers_each_to_a_core_of_its_own(serve, backend):
    if backend == "postgres":
        pytest.skip("binding to a core does not depend on the database (seen on SQLite)")
    single = serve()
    cores = thread_cores(single.proc.pid)
    assert len(cores) == 1
    core = cores.pop()
    assert core in map(str, CORES)
    assert f"habitreward (CPU {core}): webhook listening on http://" in "\n".join(single.lines)  # says so
    single.kill()  # one serve per SQLite file

    supervised = serve("--workers", "2", name="workers")
    wait_until(lambda: len(worker_pids(supervised)) == 2, what="both workers started")
    per_worker = [thread_cores(pid) for pid in worker_pids(supervised).values()]
    assert per_worker == [{str(CORES[0])}, {str(CORES[1])}]
    assert thread_cores(supervised.proc.pid) == {all_cores()}  # the supervisor is left alone


@needs_two_cores
def test_serve_pin_cpu_off_leaves_it_to_the_scheduler(serve, backend):
    if backend == "postgres":
        pytest.skip("binding to a core does not depend on the database (seen on SQLite)")
    server = serve("--pin-cpu", "off")
    assert thread_cores(server.proc.pid) == {all_cores()}
    assert "habitreward: webhook listening on http://" in "\n".join(server.lines)


@pytest.mark.no_db
@linux_only
@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_a_core_not_available_is_a_one_line_error(botapi, tmp_path, workers):
    """With workers, from the supervisor once, before any worker starts."""
    process = ServeProcess("sqlite:///" + str(tmp_path / "x.db"), botapi, tmp_path)
    result = subprocess.run([HABITREWARD_BIN, "serve", "--webhook", "--port", "0", "--workers", workers,
                             "--pin-cpu", "0,4096"], cwd=tmp_path, env=process.environment(),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("Error: --pin-cpu: CPU 4096 is not available"), errors
    assert "worker" not in result.stdout + result.stderr
