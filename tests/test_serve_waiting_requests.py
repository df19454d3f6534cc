"""``habitreward serve`` at its start: requests to use the bot that no admin has yet (asked while
there was none) go out only at their person's next message, so the operator is told how many
wait so, once there is an admin (docs/bot.md)."""

from __future__ import annotations

import pytest

from test_serve_kit import ServeProcess

pytestmark = pytest.mark.slow

LINE = ("2 request(s) to use the bot wait with no admin having them (asked while no admin could get them): each"
        " goes to the admins at that person's next message; to see who waits: habitreward users list --waiting")


def _seed(engine, *, admin: bool) -> None:
    from habitreward.bot.state import set_approval
    from habitreward.engine.users import DECLINED, REQUESTED, UNSENT

    for tid, state in ((3, UNSENT), (5, UNSENT), (6, REQUESTED), (7, DECLINED)):  # two unsent
        engine.register(tid, f"User {tid}")
        set_approval(engine, tid, state)
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
