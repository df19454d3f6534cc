"""``habitreward habits alias add|remove|list``, ``habitreward match`` and ``habitreward stats``."""

from __future__ import annotations

import click

from habitreward.cli.admin import habits
from habitreward.cli.app import AppContext, cli, pass_app
from habitreward.cli.output import TELEGRAM_ID, emit, emit_json, emit_json_items, emit_table, json_option


def _habit(app: AppContext, name: str, telegram_id: int | None):  # noqa: ANN202
    engine = app.engine()
    owner = engine.get_user(telegram_id) if telegram_id is not None else None
    return engine.find_habit(owner, name)


_user_option = click.option(
    "--user", "telegram_id", type=TELEGRAM_ID, help="Look the habit up among this user's habits (for personal habits)."
)


@habits.group("alias")
def alias() -> None:
    """Other words for a habit in free text ("jog" for Running).

    The free-text matcher treats an alias like the habit's name, with case,
    accents, punctuation and word endings ignored.
    """


@alias.command("add")
@click.argument("habit")
@click.argument("aliases", nargs=-1, required=True)
@_user_option
@pass_app
def alias_add(app: AppContext, habit: str, aliases: tuple[str, ...], telegram_id: int | None) -> None:
    """Add one or more ALIASES to the habit called HABIT (all of them, or none if one is refused)."""
    found = _habit(app, habit, telegram_id)
    engine = app.engine()
    with engine.transaction():  # one refused alias (empty, taken, one too many) leaves none added
        stored = [engine.add_alias(found, text) for text in aliases]
    for text in stored:
        click.echo(f"{found.name!r} now also matches {text!r}.")


@alias.command("remove")
@click.argument("habit")
@click.argument("alias_text", metavar="ALIAS")
@_user_option
@pass_app
def alias_remove(app: AppContext, habit: str, alias_text: str, telegram_id: int | None) -> None:
    """Remove ALIAS from the habit called HABIT."""
    found = _habit(app, habit, telegram_id)
    app.engine().remove_alias(found, alias_text)
    click.echo(f"Removed the alias {alias_text!r} of {found.name!r}.")


@alias.command("list")
@click.argument("habit", required=False)
@_user_option
@json_option
@pass_app
def alias_list(app: AppContext, habit: str | None, telegram_id: int | None, as_json: bool) -> None:
    """Aliases of HABIT, or of every habit (that --user sees) when HABIT is left out."""
    engine = app.engine()
    if habit is not None:
        found = _habit(app, habit, telegram_id)
        listed = [(found.id, found.name, engine.aliases_for([found])[found.id])]
    else:  # the habits with aliases, read as printed (no list of every habit first)
        listed = engine.alias_listing(engine.get_user(telegram_id) if telegram_id is not None else None)
    rows = ({"habit_id": habit_id, "habit": name, "aliases": aliases} for habit_id, name, aliases in listed)
    if as_json:
        emit_json_items(rows)
        return
    emit_table(
        ["id", "habit", "aliases"],
        ((r["habit_id"], r["habit"], ", ".join(r["aliases"]) or "-") for r in rows),
        empty="No aliases yet.",
    )


@cli.command("match")
@click.argument("telegram_id", type=TELEGRAM_ID)
@click.argument("text")
@json_option
@pass_app
def match(app: AppContext, telegram_id: int, text: str, as_json: bool) -> None:
    """Show which of TELEGRAM_ID's habits TEXT reports, as the bot would see it (nothing is logged).

    Runs the same matchers as the bot: the local one, then the LLM when
    LLM_MODEL is set and the local one is unsure. Also shows the day the
    report would be logged for ("ran yesterday": yesterday), as if sent now;
    a message naming several days, or an earlier day the bot cannot tell, is
    always asked about (--json: "day" null, "days" the days named).
    """
    import datetime as dt

    from habitreward.nlp.days import reported_days
    from habitreward.plugins.nlp import FALLBACK_PLUGIN_NAME

    engine = app.engine()
    user = engine.get_user(telegram_id)
    fallback = engine.pm.get_plugin(FALLBACK_PLUGIN_NAME)
    if getattr(fallback, "llm", None) is not None:  # litellm's first import is not the model's answer time
        fallback.llm.wait_for_import = True
    result = engine.hooks.match_habits(user, text, engine.habits_for(user))
    data = result.as_dict() if result is not None else {"matches": [], "confident": False, "used_llm": False,
                                                          "reason": "no matcher answered"}
    written = engine.now().astimezone(engine.user_zone(user))
    days, today = reported_days(text, written.date()), engine.today(user)
    if not days.certain:  # as the bot: several days or an unknown earlier one are asked, whatever matched
        data["confident"] = False
        data["reason"] = data["reason"] or f"doubt: {days.doubt}"
    day = days.day_of(written) if days.certain else None
    data["day"] = day.isoformat() if day else None
    data["days"] = [(today - dt.timedelta(days=back)).isoformat() for back in days.back]
    if as_json:
        emit_json(data)
        return
    if not data["matches"]:
        click.echo(f"No habit found ({data['reason'] or 'no match'}); the bot would show the habit keyboard.")
        return
    emit_table(
        ["habit", "confidence", "source"],
        [(m["habit"], f"{m['confidence']:.2f}", m["source"]) for m in data["matches"]],
    )
    verdict = "logged at once" if data["confident"] else f"asked to confirm ({data['reason']})"
    if day is not None:
        when = "today" if day == today else "yesterday" if (today - day).days == 1 else f"{(today - day).days} days ago"
        on = f" for {day.isoformat()} ({when})"
    elif days.unresolved:
        on = ", with the day picked first (the message names an earlier day it cannot tell)"
    else:
        on = f", asking which day ({', '.join(data['days'])})"
    click.echo(f"The bot would have these {verdict}{on}; LLM called: {'yes' if data['used_llm'] else 'no'}.")


@cli.command("stats")
@json_option
@pass_app
def stats_command(app: AppContext, as_json: bool) -> None:
    """What free-text matching has cost: LLM calls and failures, counted across all bot processes.

    A message the local matcher settles costs no LLM call; at most one call is
    made per message. Counts live in the database (key_values, namespace "stats").
    LLM_API_BASE is shown without the credentials a URL may hold (user info,
    ?api_key= and the like: [REDACTED]).
    """
    from habitreward.nlp import stats
    from habitreward.redaction import hide_url_credentials

    engine = app.engine()
    with engine.session():
        counts = stats.persisted_counts(engine.db)
    settings = app.settings
    # Shown without the credentials a URL may carry (https://user:password@host/v1, ?api_key=...).
    api_base = hide_url_credentials(settings.llm_api_base) if settings.llm_api_base else None
    data = {
        "llm_model": settings.llm_model,
        "llm_api_base": api_base,
        "llm_timeout": settings.llm_timeout,
        **counts,
    }
    emit(as_json, data, lambda: emit_table(
        ["what", "value"],
        [
            ("LLM model", settings.llm_model or "not configured (local matching only)"),
            ("LLM API base", api_base or "-"),
            ("LLM timeout (s)", settings.llm_timeout),
            ("LLM calls", counts["llm_calls"]),
            ("LLM failures (timeout, error, bad reply)", counts["llm_failures"]),
        ],
    ))
