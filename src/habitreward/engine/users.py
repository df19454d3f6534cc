"""Users: registration, approval, roles, preferences, deletion."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import peewee

from habitreward.engine import validation
from habitreward.engine.base import EngineBase
from habitreward.engine.prepared import Prepared
from habitreward.engine.results import UserListing, WaitingListing
from habitreward.errors import Conflict, NotFound, ValidationError
from habitreward.models import KeyValue, User

#: Where someone's request to use the bot stands (KeyValue rows keyed by Telegram id, written by
#: the bot's approval flow): settled, and so forgotten, whenever the user is made active.
APPROVAL_NAMESPACE = "bot.approval"
# The JSON-encoded values of those rows: waiting, and sent to an admin ("requested"); waiting, and
# no admin has it yet ("unsent": there was none, or Telegram refused it to each); waiting, and a
# process is sending it now ("sending": taken, until that process records the outcome); declined.
REQUESTED, UNSENT, SENDING, DECLINED = "requested", "unsent", "sending", "declined"
#: A request "sending" for longer than this was taken by a process that never said how sending
#: went (killed, or its database write failed): no admin has it, and the bot takes it again. Far
#: longer than sending takes (a few rate-limit waits of at most 30 s per admin); at worst an admin
#: gets it twice.
SENDING_LEASE = dt.timedelta(minutes=10)

# Every update looks its sender up (see engine/prepared.py).
_USER_BY_TELEGRAM_ID = Prepared(lambda telegram_id: User.select().where(User.telegram_id == telegram_id).limit(1), 1)

class UsersMixin(EngineBase):
    def get_user(self, telegram_id: int) -> User:
        user = self.find_user(telegram_id)
        if user is None:
            raise NotFound(f"No user with Telegram id {validation.whole_number(telegram_id)}.")
        return user

    def find_user(self, telegram_id: int) -> User | None:
        wanted = validation.lookup_telegram_id(telegram_id)
        if wanted is None:  # past 64 bits: nobody (and no statement SQLite would refuse)
            return None
        with self.session():
            return _USER_BY_TELEGRAM_ID.first(self.db, wanted)

    def list_users(self) -> list[User]:
        with self.session():
            return list(User.select().order_by(User.id))

    def user_listing(self) -> Iterator[UserListing]:
        """:meth:`list_users` as plain rows, read as they are asked for, in one read-only snapshot
        (as :meth:`habit_listing`: no model of each of tens of thousands of users, none held;
        write nothing while iterating)."""
        query = (User.select(User.telegram_id, User.name, User.active, User.is_admin, User.language,
                             User.timezone, User.created_at)
                 .order_by(User.id).tuples())
        for row in self._snapshot_rows(query):
            yield UserListing(*row)

    def waiting_listing(self) -> Iterator[WaitingListing]:
        """Everyone whose request to use the bot waits (``REGISTRATION=approval``), oldest request
        first, each with where it stands (``request``): "unsent", no admin has it yet (the bot
        sends it at their next message, once there is an admin; also one left "sending" for
        :data:`SENDING_LEASE` by a process that stopped), "sending", a process is sending it to
        the admins, or "requested", an admin has it (waiting for Approve or Decline). Read
        as :meth:`user_listing` is (``habitreward users list --waiting``)."""
        waiting = [json.dumps(state) for state in (REQUESTED, UNSENT, SENDING)]
        stale = self.utcnow() - SENDING_LEASE  # "sending" since then: its process stopped, nobody has it
        # Keyed by the Telegram id as text (always str(int)): cast to look each user up by its index.
        query = (KeyValue.select(User.telegram_id, User.name, User.active, User.is_admin, User.language,
                                 User.timezone, User.created_at, KeyValue.value, KeyValue.updated_at)
                 .join(User, on=(User.telegram_id == KeyValue.key.cast("BIGINT")))
                 .where((KeyValue.namespace == APPROVAL_NAMESPACE) & KeyValue.value.in_(waiting))
                 .order_by(KeyValue.id).tuples())  # a request's row is made when it is asked
        for *columns, value, updated_at in self._snapshot_rows(query):
            request = json.loads(value)
            if request == SENDING and updated_at is not None and updated_at < stale:
                request = UNSENT
            yield WaitingListing(UserListing(*columns), request)

    def has_users(self) -> bool:
        """Whether anybody is here yet (one row looked at, not every user read)."""
        with self.session():
            return User.select().exists()

    def admins(self) -> list[User]:
        with self.session():
            return list(User.select().where(User.is_admin & User.active).order_by(User.id))

    def add_user(
        self,
        telegram_id: int,
        name: str,
        *,
        active: bool | None = False,
        admin: bool | None = False,
        timezone: str | None = None,
        language: str | None = None,
    ) -> User:
        """Create a user as an operator would (``habitreward users add``). None for any of the
        keyword arguments is its default, as leaving it out (docs/embedding.md)."""
        active, admin = bool(active), bool(admin)  # None: False, the default
        telegram_id = validation.telegram_id(telegram_id)
        name = validation.clean_name(name, "user name")
        # None is the default; "" is no zone or language (refused, as set_timezone refuses it)
        zone = validation.timezone_name(timezone) if timezone is not None else self.settings.default_timezone
        lang = validation.language(language) if language is not None else self.settings.default_language
        with self.transaction():
            if User.select().where(User.telegram_id == telegram_id).exists():
                raise Conflict(f"A user with Telegram id {telegram_id} already exists.")
            return User.create(
                telegram_id=telegram_id,
                name=name,
                active=active or admin,
                is_admin=admin,
                timezone=zone,
                language=lang,
                language_chosen=language is not None,
            )

    def register(
        self, telegram_id: int, name: str, *, language_code: str | None = None
    ) -> tuple[User, bool]:
        """Record someone who wrote to the bot; returns (user, created).

        ``REGISTRATION`` decides whether a new user is active at once (``open``)
        or waits for an admin (``approval``, ``closed``). Telegram ids listed in
        ``ADMIN_TELEGRAM_IDS`` become active admins.
        """
        telegram_id = validation.telegram_id(telegram_id)  # as add_user: 0 or -5 is nobody's id
        existing = self.find_user(telegram_id)
        if existing is not None:
            return existing, False
        lang = (language_code or "").split("-")[0].lower()
        if lang not in self.settings.supported_languages:
            lang = self.settings.default_language
        is_admin = telegram_id in self.settings.admin_telegram_ids
        # Telegram's first name, tidied; the id when nothing visible is left ("\u00a0", "\u3000").
        shown = validation.tidy_name(name)[:validation.MAX_NAME_LENGTH].strip() or str(telegram_id)
        try:
            with self.transaction():
                user = User.create(
                    telegram_id=telegram_id,
                    name=shown,
                    language=lang,
                    timezone=self.settings.default_timezone,
                    active=is_admin or self.settings.registration == "open",
                    is_admin=is_admin,
                )
        except peewee.IntegrityError:  # a concurrent first message created the same user
            existing = self.find_user(telegram_id)
            if existing is None:
                raise
            return existing, False
        return user, True

    def _update_user(self, telegram_id: int, **fields: object) -> User:
        with self.transaction():
            user = self.get_user(telegram_id)
            for key, value in fields.items():
                setattr(user, key, value)
            user.save()
            if fields.get("active"):
                self._settle_request(user.telegram_id)
        return user

    def _settle_request(self, telegram_id: int) -> None:
        """Let in (by the bot's button or ``users activate``): a request, or a decline, is over."""
        KeyValue.delete().where((KeyValue.namespace == APPROVAL_NAMESPACE)
                                & (KeyValue.key == str(telegram_id))).execute()

    def activate_user(self, telegram_id: int) -> User:
        return self._update_user(telegram_id, active=True)

    def decide_request(self, telegram_id: int, approve: bool) -> tuple[User, bool]:
        """Approve (activate) or decline someone's waiting request to use the bot; the user as
        they are now, and whether this call decided (False: the request was not waiting any
        more: another admin approved or declined it first, even at the same moment, or it was
        settled at the command line).

        The first answer wins: one conditional statement on the waiting request (only a row
        still waiting passes, sent to an admin, being sent or not), so of an Approve and a Decline at the same
        instant only one decides and the newcomer hears one answer. A change of mind after a
        decline is ``activate_user`` (``habitreward users activate``)."""
        wanted = validation.lookup_telegram_id(telegram_id)  # "abc" or 2.5 refused before any write
        if wanted is None:
            return self.get_user(telegram_id), False  # NotFound
        key = str(wanted)
        waiting = ((KeyValue.namespace == APPROVAL_NAMESPACE) & (KeyValue.key == key)
                   & KeyValue.value.in_([json.dumps(state) for state in (REQUESTED, UNSENT, SENDING)]))
        with self.transaction():
            if approve:
                decided = KeyValue.delete().where(waiting).execute() == 1
                if decided:
                    User.update(active=True, updated_at=self.utcnow()).where(User.telegram_id == wanted).execute()
            else:
                decided = KeyValue.update(value=json.dumps(DECLINED), updated_at=self.utcnow()).where(
                    waiting).execute() == 1
            return self.get_user(telegram_id), decided

    def deactivate_user(self, telegram_id: int) -> User:
        return self._update_user(telegram_id, active=False)

    def promote_user(self, telegram_id: int, admin: bool = True) -> User:
        """Grant (``admin=True``) or revoke an admin's rights. None is refused: unlike a setting
        of something new, this flag is the change itself, and a "not given" must never grant them."""
        if not isinstance(admin, bool):
            raise ValidationError(f"admin must be True or False, got {admin!r}")
        fields: dict[str, object] = {"is_admin": admin}
        if admin:
            fields["active"] = True
        return self._update_user(telegram_id, **fields)

    def set_language(self, user: User, language: str) -> User:
        """An explicit choice: Telegram's language_code never overrides it afterwards."""
        code = validation.language(language)
        return self._update_user(user.telegram_id, language=code, language_chosen=True)

    def set_timezone(self, user: User, timezone: str) -> User:
        return self._update_user(user.telegram_id, timezone=validation.timezone_name(timezone))

    def rename_user(self, user: User, name: str) -> User:
        return self._update_user(user.telegram_id, name=validation.clean_name(name, "user name"))

    def delete_user(self, telegram_id: int) -> dict[str, int]:
        """Remove a user and everything that is theirs, plugins' rows included.

        Returns how many rows went, per table.
        """
        counts: dict[str, int] = {}
        with self.transaction():
            user = self.get_user(telegram_id)
            self.hooks.user_deleted(self, user)
            # Children first, in reverse registration order, so foreign keys hold
            # on databases where ON DELETE CASCADE was not declared.
            for model in reversed(self.hooks.models()):
                if model is User:
                    continue
                owner_fields = [
                    f for f in model._meta.refs if getattr(f, "rel_model", None) is User
                ]
                for field in owner_fields:
                    deleted = model.delete().where(field == user.id).execute()
                    if deleted:
                        counts[model._meta.table_name] = counts.get(model._meta.table_name, 0) + deleted
            counts["users"] = User.delete().where(User.id == user.id).execute()
        return counts
