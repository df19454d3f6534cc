"""Rewards: /list_rewards, /my_rewards (progress bars) and /claim_reward.

Callback data: ``rw[:page]``, ``my[:page]``, ``cl`` (claimable list), ``clp:page``,
``cl:reward`` (confirm), ``clx:reward`` (claim). A claim is checked against the
user's own claimable rewards, so a forged id claims nothing. The confirm step
is carried by the button itself, so it survives a restart.
"""

from __future__ import annotations

from typing import Any

from habitreward.bot.handlers.common import Screen, int_args
from habitreward.bot.handlers.router import on_callback, on_command
from habitreward.bot.handlers.views import _page, paged
from habitreward.bot.i18n import N_, Translator
from habitreward.bot.keyboards import Rows, menu_row, picker, progress_bar
from habitreward.engine.results import ProgressEntry
from habitreward.errors import NotClaimable
from habitreward.models import ProgressStatus, Reward, RewardProgress, User

TYPE_NAMES = {"virtual": N_("virtual"), "real": N_("real"), "none": N_("no reward")}


def type_name(t: Translator, kind: str) -> str:
    return t._(TYPE_NAMES.get(kind, kind))


def reward_line(t: Translator, reward: Reward, user_id: int, in_draw: bool = True) -> str:
    parts = [t._("<b>{reward}</b>", reward=reward.name), type_name(t, reward.type)]
    if not reward.is_nothing:
        parts.append(t.ngettext("{n} piece", "{n} pieces", reward.pieces_required))
    if in_draw:
        parts.append(t._("weight {weight}", weight=t.number(reward.weight)))
    else:  # a plugin gives its pieces (engine.rewards_out_of_draw): its weight is no chance
        parts.append(t._("not in the draw: comes as a bonus"))
    if reward.owner_id == user_id:
        parts.append(t._("yours"))
    return "• " + " · ".join(parts)


def _rewards_for(engine: Any, user: User) -> tuple[list[Reward], set[int]]:
    """The rewards ``user`` sees, and those of them a plugin keeps out of the draw."""
    rewards = engine.rewards_for(user)
    return rewards, engine.rewards_out_of_draw(rewards)


@on_command("list_rewards", "rewards")
@on_callback("rw")
async def list_rewards(s: Screen, args: list[str]) -> None:
    t = s.t
    rewards, out_of_draw = await s.run(_rewards_for, s.engine, s.user)
    if not rewards:
        await s.show(t._("There are no rewards yet."), [[(t._("➕ Add a reward"), "ra")], menu_row(t)])
        return
    lines = [reward_line(t, reward, s.user.id, reward.id not in out_of_draw) for reward in rewards]
    text, rows = paged(s, t._("<b>Rewards you can win</b>"), lines, _page(args), "rw",
                       extra=[[(t._("🏆 My rewards"), "my"), (t._("🎲 Odds"), "od")]])
    await s.show(text, rows)


def progress_lines(s: Screen, entry: ProgressEntry) -> str:
    t = s.t
    # A claimed reward starts its next cycle from zero pieces.
    earned = entry.pieces_earned if entry.status is not ProgressStatus.CLAIMED else 0
    bar = progress_bar(earned, entry.pieces_required, s.settings.progress_bar_length)
    line = f"{t._('<b>{reward}</b>', reward=entry.reward.name)}\n{bar} {earned}/{entry.pieces_required}"
    if entry.status is ProgressStatus.ACHIEVED:
        line += " " + t._("🎉 ready to claim")
    if entry.times_claimed:
        line += " " + t.ngettext("(claimed {n} time)", "(claimed {n} times)", entry.times_claimed)
    return line


@on_command("my_rewards")
@on_callback("my")
async def my_rewards(s: Screen, args: list[str]) -> None:
    t = s.t
    entries = await s.run(s.engine.progress, s.user)
    if not entries:
        await s.show(t._("No reward pieces yet. Log your habits to win some!"),
                     [[(t._("✅ Log a habit"), "done")], menu_row(t)])
        return
    extra: Rows = []
    if any(entry.status is ProgressStatus.ACHIEVED for entry in entries):
        extra.append([(t._("🎁 Claim a reward"), "cl")])
    lines = [progress_lines(s, entry) for entry in entries]
    text, rows = paged(s, t._("<b>Your rewards</b>"), lines, _page(args), "my", extra=extra)
    await s.show(text, rows)


async def claim_list(s: Screen, page: int) -> None:
    t = s.t
    claimable = await s.run(s.engine.claimable, s.user)
    if not claimable:
        await s.show(t._("Nothing to claim yet: collect all pieces of a reward first."),
                     [[(t._("🏆 My rewards"), "my")], menu_row(t)])
        return
    rows, _, _ = picker(t, [entry.reward for entry in claimable], page,
                        pick=lambda r: f"cl:{r.id}", page_data=lambda p: f"clp:{p}", per_row=1)
    rows.append(menu_row(t))
    await s.show(t._("Which reward do you want to claim?"), rows)


async def _claimable_reward(s: Screen, args: list[str]) -> Reward | None:
    ids = int_args(args, 1)
    return None if ids is None else await s.run(_claimable, s.engine, s.user, ids[0])


def _claimable(engine: Any, user: User, reward_id: int) -> Reward | None:
    """The user's reward ``reward_id`` if it is achieved and waiting to be claimed."""
    return next((entry.reward for entry in engine.claimable(user) if entry.reward.id == reward_id), None)


def _claim(engine: Any, user: User, reward_id: int) -> tuple[Reward | None, RewardProgress | None]:
    """Claim the user's reward ``reward_id`` if it is claimable: (reward, its progress after)."""
    reward = _claimable(engine, user, reward_id)
    return (reward, engine.claim(user, reward)) if reward is not None else (None, None)


@on_command("claim_reward", "claim")
@on_callback("cl")
async def claim(s: Screen, args: list[str]) -> None:
    if not args:
        await claim_list(s, 0)
        return
    reward = await _claimable_reward(s, args)
    if reward is None:
        await s.refuse(s.t._("That reward is not ready to claim."))
        return
    t = s.t
    await s.show(t._("Claim <b>{reward}</b> now?", reward=reward.name),
                 [[(t._("✅ Yes, claim it"), f"clx:{reward.id}"), (t._("⬅️ Back"), "cl")]])


@on_callback("clp")
async def claim_page(s: Screen, args: list[str]) -> None:
    await claim_list(s, _page(args))


@on_callback("clx")
async def claim_confirmed(s: Screen, args: list[str]) -> None:
    t = s.t
    ids = int_args(args, 1)
    try:
        reward, progress = await s.run(_claim, s.engine, s.user, ids[0]) if ids else (None, None)
    except NotClaimable:  # claimed a moment ago (another press, another device)
        reward, progress = None, None
    if reward is None or progress is None:
        await s.refuse(t._("That reward is not ready to claim."))
        return
    text = t._("🎉 Enjoy your <b>{reward}</b>!", reward=reward.name) + "\n" + \
        t.ngettext("Claimed {n} time so far.", "Claimed {n} times so far.", progress.times_claimed)
    await s.show(text, [[(t._("🏆 My rewards"), "my")], menu_row(t)])
