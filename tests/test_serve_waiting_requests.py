"""``habitreward serve`` at its start: requests to use the bot that no admin has yet (asked while
there was none) go out only at their person's next message, so the operator is told how many
wait so, once there is an admin (docs/bot.md)."""

from __future__ import annotations

import pytest

from test_serve_kit import ServeProcess

pytestmark = pytest.mark.slow

LINE = ("3 request(s) to use the bot wait with no admin having them (asked while no admin could get them, or"
        " left half-sent by a process that stopped): each goes to the admins at that person's next message; to see"
        " who waits: habitreward users list --waiting")


def _seed(engine, *, admin: bool) -> None:
    """Two unsent requests, and one a process took to send and was killed sending (its lease,
    SENDING_LEASE, over): three with no admin having them. One taken a moment ago, one an admin
    has and one declined are not counted."""
    import datetime as dt

    from habitreward.bot.state import APPROVAL, SENDING_LEASE, set_approval
    from habitreward.engine.users import DECLINED, REQUESTED, SENDING, UNSENT
    from habitreward.models import KeyValue, utcnow

    for tid, state in ((3, UNSENT), (5, UNSENT), (6, REQUESTED), (7, DECLINED), (8, SENDING), (9, SENDING)):
        engine.register(tid, f"User {tid}")
        set_approval(engine, tid, state)
    with engine.transaction():  # serve runs on the real clock: 8's sender stopped a lease and a minute ago
        for tid, taken in ((8, utcnow() - SENDING_LEASE - dt.timedelta(minutes=1)), (9, utcnow())):
            KeyValue.update(updated_at=taken).where((KeyValue.namespace == APPROVAL)
                                                    & (KeyValue.key == str(tid))).execute()
    if admin:
        engine.add_user(42, "Ann", admin=True)
    engine.close()


def _start(db_url, botapi, tmp_path, mode: str, env: dict[str, str]) -> ServeProcess:
    args, ready = (("--webhook", "--port", "0"), "listening on") if mode == "webhook" else ((), "polling Telegram")
    process = ServeProcess(db_url, botapi, tmp_path, *args, env={"HABITREWARD_POLL_TIMEOUT": "1", **env})
    return process.start(wait_for=ready)


@pytest.mark.parametrize("mode", ["polling", "webhook", "webhook --workers 2"])
@pytest.mark.parametrize("admin_from", ["database", "ADMIN_TELEGRAM_IDS"])
def test_serve_says_at_its_start_how_many_requests_wait_for_no_admin(engine, db_url, botapi, tmp_path, serve, mode,
                                                                      admin_from):
    """Once per start: by the supervisor of --workers, not by each worker."""
    _seed(engine, admin=admin_from == "database")
    env = {"REGISTRATION": "approval"}
    if admin_from == "ADMIN_TELEGRAM_IDS":
        env["ADMIN_TELEGRAM_IDS"] = "99"
    if mode == "polling":
        process = _start(db_url, botapi, tmp_path, mode, env)
        process.kill()
    else:
        process = serve(*mode.split()[1:], env=env)  # killed (workers too) by the fixture
    logs = process.logs()
    assert f"WARNING habitreward.serve: {LINE}\n" in logs
    assert logs.count("to use the bot wait with no admin") == 1


@pytest.mark.parametrize(("admin", "registration"), [(False, "approval"), (True, "open")])
def test_serve_says_nothing_of_them_with_no_admin_or_when_registration_is_not_approval(
        engine, db_url, botapi, tmp_path, admin, registration):
    """No admin: nothing would send them (each newcomer's first message had its WARNING); another
    REGISTRATION: the bot does not send waiting requests at all."""
    _seed(engine, admin=admin)
    process = _start(db_url, botapi, tmp_path, "polling", {"REGISTRATION": registration})
    try:
        logs = process.logs()
    finally:
        process.kill()
    assert any("polling Telegram" in line for line in process.lines)  # started: past the point it would say it
    assert "to use the bot wait" not in logs
