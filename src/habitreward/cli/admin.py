"""``habitreward users|habits|rewards``: what an operator scripts."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import click

from habitreward.bot.state import unsent_requests, waiting_requests
from habitreward.cli.app import AppContext, cli, pass_app
from habitreward.cli.output import TELEGRAM_ID, emit_json_items, emit_table, json_option
from habitreward.engine import validation


def _user_dict(user) -> dict:  # noqa: ANN001 - a User or a UserListing
    return {
        "telegram_id": user.telegram_id,
        "name": user.name,
        "active": user.active,
        "admin": user.is_admin,
        "language": user.language,
        "timezone": user.timezone,
        "created_at": user.created_at.isoformat(" ", "seconds"),
    }


# --- users -------------------------------------------------------------------------------


@cli.group()
def users() -> None:
    """List, add, approve and remove users."""


#: How ``users list --waiting`` shows where a request stands (``--json``: the stored word).
_REQUEST_SHOWN = {"unsent": "no admin has it", "sending": "being sent", "requested": "an admin has it"}


@users.command("list")
@click.option("--waiting", is_flag=True,
              help="Only those whose request to use the bot waits (REGISTRATION=approval), oldest request first,"
                   " with where it stands: 'no admin has it' (there was none, Telegram refused it to each, or"
                   " the process sending it stopped more than ten minutes ago: the bot sends it at their next"
                   " message, at the earliest five minutes after a refused try), 'being sent' or 'an admin has"
                   " it' (waiting for Approve or Decline); --json gives it as \"request\": \"unsent\","
                   " \"sending\" or \"requested\".")
@json_option
@pass_app
def users_list(app: AppContext, waiting: bool, as_json: bool) -> None:
    """Every user, oldest first (the table shows a UTC offset as UTC+5; --json the stored name).

    To let in someone who waits: habitreward users activate ID.
    """
    if waiting:
        _list_waiting(app, as_json)
        return
    # Read as printed (tens of thousands on a big bot), no model of each: see habits list.
    rows = (_user_dict(u) for u in app.engine().user_listing())
    if as_json:
        emit_json_items(rows)
        return
    emit_table(
        ["telegram_id", "name", "active", "admin", "language", "timezone"],
        ((r["telegram_id"], r["name"], "yes" if r["active"] else "no", "yes" if r["admin"] else "no",
          r["language"], validation.zone_label(r["timezone"])) for r in rows),
        empty="No users yet.",
    )


def _list_waiting(app: AppContext, as_json: bool) -> None:
    """``users list --waiting``: the engine's waiting_listing, read as printed as every user is."""
    rows = ({**_user_dict(w.user), "request": w.request} for w in app.engine().waiting_listing())
    if as_json:
        emit_json_items(rows)
        return
    emit_table(
        ["telegram_id", "name", "request", "asked (UTC)", "language", "timezone"],
        ((r["telegram_id"], r["name"], _REQUEST_SHOWN.get(r["request"], r["request"]), r["created_at"][:16],
          r["language"], validation.zone_label(r["timezone"])) for r in rows),
        empty="Nobody is waiting to be let in.",
    )


@users.command("add")
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.option("--name", required=True, help="Display name.")
@click.option("--active", is_flag=True, help="Approve at once (default: waits for approval).")
@click.option("--admin", is_flag=True, help="Make an admin (implies --active).")
@click.option("--timezone", "timezone", metavar="TZ",
              help="IANA name (Asia/Almaty; any case, or the city alone: almaty) or offset (UTC+5).")
@click.option("--language", metavar="xx", help="en, ru or kk.")
@pass_app
def users_add(app: AppContext, telegram_id: int, name: str, active: bool, admin: bool,
              timezone: str | None, language: str | None) -> None:
    """Add the user with Telegram id TELEGRAM_ID."""
    user = app.engine().add_user(telegram_id, name, active=active, admin=admin, timezone=timezone, language=language)
    state = "admin" if user.is_admin else ("active" if user.active else "waiting for approval")
    click.echo(f"Added {user.name} ({user.telegram_id}), {state}.")


@users.command("edit")
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.option("--name", help="New display name.")
@click.option("--timezone", "timezone", metavar="TZ",
              help="IANA name (Asia/Almaty; any case, or the city alone: almaty) or offset (UTC+5).")
@click.option("--language", metavar="xx", help="en, ru or kk (as if chosen in /settings).")
@pass_app
def users_edit(app: AppContext, telegram_id: int, name: str | None, timezone: str | None,
               language: str | None) -> None:
    """Change the name, time zone or language of user TELEGRAM_ID."""
    if name is None and timezone is None and language is None:
        raise click.ClickException("Nothing to change: give --name, --timezone or --language.")
    engine = app.engine()
    with engine.transaction():  # one bad value changes nothing
        user = engine.get_user(telegram_id)
        if name is not None:
            user = engine.rename_user(user, name)
        if timezone is not None:
            user = engine.set_timezone(user, timezone)
        if language is not None:
            user = engine.set_language(user, language)
    click.echo(f"{user.name} ({user.telegram_id}): language {user.language},"
               f" time zone {validation.zone_label(user.timezone)}.")


@users.command("activate")
@click.argument("telegram_id", type=TELEGRAM_ID)
@pass_app
def users_activate(app: AppContext, telegram_id: int) -> None:
    """Approve a user: they can use the bot."""
    user = app.engine().activate_user(telegram_id)
    click.echo(f"{user.name} ({user.telegram_id}) is active.")


def _not_listed(app: AppContext, telegram_id: int, what: str) -> None:
    """ADMIN_TELEGRAM_IDS makes its people active admins again at their next message (see
    docs/bot.md, Admins): doing otherwise here would last until then, and say it worked."""
    if telegram_id in app.settings.admin_telegram_ids:
        raise click.ClickException(
            f"{telegram_id} is listed in ADMIN_TELEGRAM_IDS, which makes them an active admin again at"
            f" their next message: take the id off that list (and restart the bot) before you {what}."
        )


@users.command("deactivate")
@click.argument("telegram_id", type=TELEGRAM_ID)
@pass_app
def users_deactivate(app: AppContext, telegram_id: int) -> None:
    """Block a user; their data stays. Not for someone listed in ADMIN_TELEGRAM_IDS."""
    _not_listed(app, telegram_id, "deactivate them")
    user = app.engine().deactivate_user(telegram_id)
    click.echo(f"{user.name} ({user.telegram_id}) is inactive.")


@users.command("promote")
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.option("--revoke", is_flag=True, help="Take admin rights away instead.")
@pass_app
def users_promote(app: AppContext, telegram_id: int, revoke: bool) -> None:
    """Make a user an admin (approves them too); --revoke not for someone in ADMIN_TELEGRAM_IDS.

    Requests to use the bot sent before reached only the admins there were: the new admin gets
    every one still waiting by sending /requests to the bot (this command says how many wait).
    """
    if revoke:
        _not_listed(app, telegram_id, "revoke their rights")
    engine = app.engine()
    user = engine.promote_user(telegram_id, admin=not revoke)
    click.echo(f"{user.name} ({user.telegram_id}) is {'an admin' if user.is_admin else 'no longer an admin'}.")
    if user.is_admin:
        _say_who_waits(engine, user.name)


def _say_who_waits(engine, admin: str) -> None:  # noqa: ANN001 - an Engine
    """Newcomers who asked while no admin could get their request, or whose sender stopped
    half-way (the bot sends it at their next message, docs/bot.md): the operator who just made an
    admin hears who they are. Then how many requests wait at all: the new admin has none of them
    (requests go to the admins there are when sent), and gets them with /requests."""
    count, first = unsent_requests(engine)
    if count:
        names = ", ".join(f"{u.name} ({u.telegram_id})" for u in first) + (", ..." if count > len(first) else "")
        people = "1 person" if count == 1 else f"{count} people"
        click.echo(f"{people} asked to use the bot while no admin could get their request: {names}. It reaches the"
                   " admins at their next message to the bot (five minutes or more after a refused try); to let"
                   " one in now: habitreward users activate ID"
                   " (who waits: habitreward users list --waiting)")
    waiting, _ = waiting_requests(engine, shown=0)
    if waiting:
        click.echo(f"Requests waiting for an answer: {waiting}. {admin} gets them in the bot with /requests (each"
                   " with Approve and Decline).")


@users.command("delete")
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def users_delete(app: AppContext, telegram_id: int, yes: bool) -> None:
    """Delete a user and everything that is theirs (logs, progress, personal habits and rewards)."""
    engine = app.engine()
    user = engine.get_user(telegram_id)
    if not yes:
        click.confirm(f"Delete {user.name} ({telegram_id}) and all their data?", abort=True)
    counts = engine.delete_user(telegram_id)
    detail = ", ".join(f"{n} {table}" for table, n in counts.items() if table != "users")
    click.echo(f"Deleted {user.name} ({telegram_id})" + (f" with {detail}." if detail else "."))


# --- habits ------------------------------------------------------------------------------


def _owner(app: AppContext, telegram_id: int | None):  # noqa: ANN202
    return app.engine().get_user(telegram_id) if telegram_id is not None else None


def _habit_dict(habit) -> dict:  # noqa: ANN001
    return {
        "id": habit.id,
        "name": habit.name,
        "weight": habit.weight,
        "category": habit.category,
        "skip_days": habit.allowed_skip_days,
        "owner": habit.owner.telegram_id if habit.owner_id else None,
        "active": habit.active,
    }


@cli.group()
def habits() -> None:
    """List, add, edit and remove habits (shared, or personal with --user)."""


@habits.command("list")
@click.option("--user", "telegram_id", type=TELEGRAM_ID, help="Only what this user sees.")
@click.option("--all", "include_inactive", is_flag=True, help="Include removed habits.")
@json_option
@pass_app
def habits_list(app: AppContext, telegram_id: int | None, include_inactive: bool, as_json: bool) -> None:
    """Habits, shared ones first."""
    engine = app.engine()
    if telegram_id is not None:
        rows = [_habit_dict(h) for h in engine.habits_for(engine.get_user(telegram_id))]
    else:  # every habit: read as printed (tens of thousands on a big bot), no model of each
        rows = ({"id": h.id, "name": h.name, "weight": h.weight, "category": h.category,
                 "skip_days": h.allowed_skip_days, "owner": h.owner_telegram_id, "active": h.active}
                for h in engine.habit_listing(include_inactive=include_inactive))
    if as_json:
        emit_json_items(rows)
        return
    emit_table(
        ["id", "name", "weight", "category", "skip_days", "owner", "active"],
        ((r["id"], r["name"], r["weight"], r["category"] or "", r["skip_days"], r["owner"] or "shared",
          "yes" if r["active"] else "no") for r in rows),
        empty="No habits yet.",
    )


@habits.command("add")
@click.argument("name")
@click.option("--weight", type=int, default=10, show_default=True, help="1-100; heavier habits raise reward odds.")
@click.option("--category", help="Free-form group such as health.")
@click.option("--skip-days", type=int, default=0, show_default=True, help="Missed days that keep a streak.")
@click.option("--user", "telegram_id", type=TELEGRAM_ID, help="Personal habit of this user (default: shared).")
@pass_app
def habits_add(app: AppContext, name: str, weight: int, category: str | None, skip_days: int,
               telegram_id: int | None) -> None:
    """Add a habit called NAME."""
    habit = app.engine().add_habit(name, weight=weight, category=category, allowed_skip_days=skip_days,
                                   owner=_owner(app, telegram_id))
    click.echo(f"Added {'personal' if habit.owner_id else 'shared'} habit {habit.name!r} (id {habit.id}).")


@habits.command("edit")
@click.argument("name")
@click.option("--name", "new_name", help="New name.")
@click.option("--weight", type=int, help="1-100.")
@click.option("--category", help="New category ('' clears it).")
@click.option("--skip-days", type=int, help="Missed days that keep a streak.")
@click.option("--user", "telegram_id", type=TELEGRAM_ID, help="Look the habit up among this user's habits.")
@pass_app
def habits_edit(app: AppContext, name: str, new_name: str | None, weight: int | None, category: str | None,
                skip_days: int | None, telegram_id: int | None) -> None:
    """Change the habit called NAME."""
    engine = app.engine()
    habit = engine.find_habit(_owner(app, telegram_id), name)
    kwargs = {} if category is None else {"category": category}
    habit = engine.edit_habit(habit, name=new_name, weight=weight, allowed_skip_days=skip_days, **kwargs)
    click.echo(f"Updated habit {habit.name!r}.")


@habits.command("remove")
@click.argument("name")
@click.option("--user", "telegram_id", type=TELEGRAM_ID, help="Look the habit up among this user's habits.")
@pass_app
def habits_remove(app: AppContext, name: str, telegram_id: int | None) -> None:
    """Remove the habit called NAME (its history stays)."""
    engine = app.engine()
    habit = engine.remove_habit(engine.find_habit(_owner(app, telegram_id), name))
    click.echo(f"Removed habit {habit.name!r}.")


# --- rewards -----------------------------------------------------------------------------


def _reward_dict(reward, owner: int | None, out_of_draw: set[int]) -> dict:  # noqa: ANN001 - a Reward or a RewardListing
    return {
        "id": reward.id,
        "name": reward.name,
        "weight": reward.weight,
        "type": reward.type,
        "pieces": reward.pieces_required,
        "value": str(reward.piece_value) if reward.piece_value is not None else None,
        "max_per_day": reward.max_per_day,
        "owner": owner,
        "active": reward.active,
        "in_draw": reward.active and reward.id not in out_of_draw,
    }


def _listed_rewards(engine, include_inactive: bool) -> Iterator[dict]:  # noqa: ANN001 - an Engine
    """Every reward as a dict, read as printed (see habits list), a few hundred at a time asked
    which of them a plugin keeps out of the draw."""
    listing = engine.reward_listing(include_inactive=include_inactive)
    while chunk := list(itertools.islice(listing, _REWARDS_WEIGHED_TOGETHER)):
        out_of_draw = engine.rewards_out_of_draw(chunk)
        yield from (_reward_dict(r, r.owner_telegram_id, out_of_draw) for r in chunk)


_REWARDS_WEIGHED_TOGETHER = 500

#: What a reward's weight column says for a reward a plugin keeps out of the draw, and why.
NOT_DRAWN = "not drawn"
NOT_DRAWN_NOTE = ("not drawn: a plugin keeps the reward out of the random draw (its pieces come from the"
                  " plugin), so the weight it was added with counts for nothing")


@cli.group()
def rewards() -> None:
    """List, add, edit and remove rewards (shared, or personal with --user)."""


@rewards.command("list")
@click.option("--user", "telegram_id", type=TELEGRAM_ID, help="Only what this user sees.")
@click.option("--all", "include_inactive", is_flag=True, help="Include removed rewards.")
@json_option
@pass_app
def rewards_list(app: AppContext, telegram_id: int | None, include_inactive: bool, as_json: bool) -> None:
    """Rewards, shared ones first.

    A reward a plugin keeps out of the random draw (it gives that reward's pieces itself, as the
    perfect_day plugin does its bonus) has its weight read "not drawn": no completion draws it, and
    "habitreward odds" leaves it out. --json prints [{"id", "name", "weight", "type", "pieces", "value",
    "max_per_day", "owner", "active", "in_draw"}]; "weight" is the weight it was added with, and
    "in_draw" is false for a reward no completion draws: a removed one, or one a plugin keeps out.
    """
    engine = app.engine()
    if telegram_id is not None:  # the shared ones and the person's own
        user = engine.get_user(telegram_id)
        shown = engine.rewards_for(user)
        out_of_draw = engine.rewards_out_of_draw(shown)
        rows = [_reward_dict(r, user.telegram_id if r.owner_id else None, out_of_draw) for r in shown]
    else:  # every reward: read as printed, no model of each (see habits list)
        rows = _listed_rewards(engine, include_inactive)
    if as_json:
        emit_json_items(rows)
        return
    rows = list(rows)
    emit_table(
        ["id", "name", "weight", "type", "pieces", "value", "max/day", "owner", "active"],
        ((r["id"], r["name"], _weight_cell(r), r["type"], r["pieces"], r["value"] or "",
          r["max_per_day"] or "no limit", r["owner"] or "shared", "yes" if r["active"] else "no") for r in rows),
        empty="No rewards yet.",
    )
    if any(_weight_cell(r) == NOT_DRAWN for r in rows):
        click.echo(f"{NOT_DRAWN_NOTE}.")


def _weight_cell(row: dict) -> str:
    """A removed reward is not drawn either, but its active column says why."""
    return NOT_DRAWN if row["active"] and not row["in_draw"] else f"{row['weight']:g}"


_TYPES = click.Choice(["virtual", "real", "none"], case_sensitive=False)


@rewards.command("add")
@click.argument("name")
@click.option("--weight", type=float, default=1.0, show_default=True, help="Above 0; relative chance in the draw.")
@click.option("--type", "kind", type=_TYPES, default="virtual", show_default=True,
              help="'none' is a 'no reward this time' entry.")
@click.option("--pieces", type=int, default=1, show_default=True, help="Pieces needed before it can be claimed.")
@click.option("--value", help="Value of one piece, e.g. 2.50.")
@click.option("--max-per-day", type=int, default=1, show_default=True,
              help="Draws per user and day, 0-1000; 0 = no limit.")
@click.option("--user", "telegram_id", type=TELEGRAM_ID, help="Personal reward of this user (default: shared).")
@pass_app
def rewards_add(app: AppContext, name: str, weight: float, kind: str, pieces: int, value: str | None,
                max_per_day: int, telegram_id: int | None) -> None:
    """Add a reward called NAME."""
    reward = app.engine().add_reward(name, weight=weight, type=kind, pieces_required=pieces, piece_value=value,
                                     max_per_day=max_per_day, owner=_owner(app, telegram_id))
    click.echo(f"Added {'personal' if reward.owner_id else 'shared'} reward {reward.name!r} (id {reward.id}).")


@rewards.command("edit")
@click.argument("name")
@click.option("--name", "new_name", help="New name.")
@click.option("--weight", type=float, help="Above 0.")
@click.option("--type", "kind", type=_TYPES)
@click.option("--pieces", type=int, help="Pieces needed.")
@click.option("--value", help="Value of one piece ('' clears it).")
@click.option("--max-per-day", type=int, help="0-1000; 0 = no limit.")
@click.option("--user", "telegram_id", type=TELEGRAM_ID, help="Look the reward up among this user's rewards.")
@pass_app
def rewards_edit(app: AppContext, name: str, new_name: str | None, weight: float | None, kind: str | None,
                 pieces: int | None, value: str | None, max_per_day: int | None, telegram_id: int | None) -> None:
    """Change the reward called NAME."""
    engine = app.engine()
    reward = engine.find_reward(_owner(app, telegram_id), name)
    kwargs = {} if value is None else {"piece_value": value}
    reward = engine.edit_reward(reward, name=new_name, weight=weight, type=kind, pieces_required=pieces,
                                max_per_day=max_per_day, **kwargs)
    click.echo(f"Updated reward {reward.name!r}.")


@rewards.command("remove")
@click.argument("name")
@click.option("--user", "telegram_id", type=TELEGRAM_ID, help="Look the reward up among this user's rewards.")
@pass_app
def rewards_remove(app: AppContext, name: str, telegram_id: int | None) -> None:
    """Remove the reward called NAME from the draw (whoever achieved it can still claim it)."""
    engine = app.engine()
    reward = engine.remove_reward(engine.find_reward(_owner(app, telegram_id), name))
    click.echo(f"Removed reward {reward.name!r}.")
