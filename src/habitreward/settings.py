"""Settings from the environment and a ``.env`` file, with the seed bot's variable names.

Real environment variables win over the ``.env`` file, so a deployment can
override one value without editing the file. Every problem is a
:class:`~habitreward.errors.ConfigError` whose message names the variable.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from habitreward.errors import ConfigError, ValidationError

LANGUAGES = ("en", "ru", "kk")
REGISTRATION_MODES = ("approval", "open", "closed")
HTTP_CLIENTS = ("builtin", "aiohttp", "httpx")
#: +10,000% a day is plenty; a huge finite rate (1e308) made the multiplier infinite, as "inf" did.
MAX_STREAK_MULTIPLIER_RATE = 100.0


def _int(minimum: int | None = None, maximum: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if minimum is not None and value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, got {value}")
        return value

    return parse


def _float(minimum: float = 0.0, maximum: float | None = None) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not math.isfinite(value):  # "inf" passed the minimum, then broke every draw
            raise ConfigError(f"{name} must be a finite number, got {raw!r}")
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
        if maximum is not None and value > maximum:
            raise ConfigError(f"{name} must be at most {maximum}, got {raw!r}")
        return value

    return parse


def _text(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _languages(name: str, raw: str) -> tuple[str, ...]:
    codes = tuple(code.strip().lower() for code in raw.split(",") if code.strip())
    unknown = [code for code in codes if code not in LANGUAGES]
    if not codes or unknown:
        raise ConfigError(
            f"{name} must be a comma-separated list of {', '.join(LANGUAGES)}, got {raw!r}"
        )
    return codes


def _language(name: str, raw: str) -> str:
    code = raw.strip().lower()
    if code not in LANGUAGES:
        raise ConfigError(f"{name} must be one of {', '.join(LANGUAGES)}, got {raw!r}")
    return code


def _timezone(name: str, raw: str) -> str:
    """What a user may set (an IANA name or a UTC offset), stored the same way: "UTC+5" was refused
    and "Europe" (a directory of the tz database) was a traceback."""
    from habitreward.engine.validation import timezone_name  # it reads LANGUAGES from here

    try:
        return timezone_name(raw)
    except ValidationError:
        raise ConfigError(
            f"{name} must be an IANA time zone such as Europe/Berlin or an offset such as UTC+5, got {raw!r}"
        ) from None


def _registration(name: str, raw: str) -> str:
    mode = raw.strip().lower()
    if mode not in REGISTRATION_MODES:
        raise ConfigError(f"{name} must be one of {', '.join(REGISTRATION_MODES)}, got {raw!r}")
    return mode


def _http_client(name: str, raw: str) -> str:
    client = raw.strip().lower()
    if client not in HTTP_CLIENTS:
        raise ConfigError(f"{name} must be one of {', '.join(HTTP_CLIENTS)}, got {raw!r}")
    return client


def _telegram_ids(name: str, raw: str) -> tuple[int, ...]:
    ids = []
    for part in raw.replace(";", ",").split(","):
        if part.strip():
            try:
                ids.append(int(part.strip()))
            except ValueError:
                raise ConfigError(f"{name} must be a comma-separated list of Telegram user ids, got {raw!r}") from None
    return tuple(ids)


def _database_url(name: str, raw: str) -> str:
    url = raw.strip()
    if "://" not in url:
        # user:password@host without its scheme: what is before the "@" may be a password.
        shown = f"[REDACTED]@{raw.rsplit('@', 1)[1]}" if "@" in raw else raw
        raise ConfigError(
            f"{name} must be a URL such as sqlite:///habitreward.db or postgresql://user@host/db, got {shown!r}"
        )
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _DATABASE_SCHEMES:
        raise ConfigError(f"{name} must be a SQLite (sqlite:///habitreward.db) or PostgreSQL"
                          f" (postgresql://user@host/db) URL; {scheme}:// is not supported")
    return url


#: The databases habitreward runs on (and is tested on).
_DATABASE_SCHEMES = frozenset({"sqlite", "postgres", "postgresql", "postgres+pool", "postgresql+pool"})


def _setting(env: str, parse: Callable[[str, str], Any], default: Any, help: str) -> Any:
    return field(default=default, metadata={"env": env, "parse": parse, "help": help})


@dataclass(frozen=True)
class Settings:
    """Every setting of habitreward. Build one with :meth:`Settings.load`."""

    telegram_bot_token: str | None = _setting("TELEGRAM_BOT_TOKEN", _text, None, "Bot token from @BotFather.")
    telegram_webhook_url: str | None = _setting(
        "TELEGRAM_WEBHOOK_URL", _text, None, "Public HTTPS URL Telegram posts updates to."
    )
    telegram_webhook_secret: str | None = _setting(
        "TELEGRAM_WEBHOOK_SECRET", _text, None,
        "Secret-token header value (16-256 of A-Z a-z 0-9 _ -); derived from the token when unset."
    )
    telegram_api_url: str | None = _setting(
        "TELEGRAM_API_URL", _text, None, "Bot API base URL, for a self-hosted Bot API server."
    )
    telegram_http_client: str = _setting(
        "TELEGRAM_HTTP_CLIENT", _http_client, "builtin",
        "builtin, aiohttp or httpx: the HTTP client for Bot API calls (builtin: habitreward's own HTTP/1.1"
        " client, the fastest, aiohttp for uploads; httpx is python-telegram-bot's own, the slowest, also used"
        " when aiohttp is missing or a proxy is set in the environment).",
    )
    database_url: str = _setting(
        "DATABASE_URL", _database_url, "sqlite:///habitreward.db", "Where the data lives (SQLite or PostgreSQL)."
    )
    llm_provider: str | None = _setting("LLM_PROVIDER", _text, None, "LLM provider name (kept for the seed's .env).")
    llm_model: str | None = _setting("LLM_MODEL", _text, None, "litellm model string; unset = no LLM matching.")
    llm_api_key: str | None = _setting("LLM_API_KEY", _text, None, "API key passed to litellm.")
    llm_api_base: str | None = _setting("LLM_API_BASE", _text, None, "Base URL of the LLM API (Ollama, vLLM, proxy).")
    llm_timeout: float = _setting("LLM_TIMEOUT", _float(0.1), 10.0, "Seconds before an LLM call is given up.")
    streak_multiplier_rate: float = _setting(
        "STREAK_MULTIPLIER_RATE", _float(0.0, MAX_STREAK_MULTIPLIER_RATE), 0.1,
        "Extra reward odds per streak day (0.1 = +10% a day; at most 100).",
    )
    streak_multiplier_max_streak: int = _setting(
        "STREAK_MULTIPLIER_MAX_STREAK", _int(0), 30, "Streak length beyond which the odds stop growing."
    )
    progress_bar_length: int = _setting("PROGRESS_BAR_LENGTH", _int(1, 50), 10, "Characters in a progress bar.")
    recent_logs_limit: int = _setting("RECENT_LOGS_LIMIT", _int(1, 100), 10, "Entries shown by /history.")
    supported_languages: tuple[str, ...] = _setting(
        "SUPPORTED_LANGUAGES", _languages, LANGUAGES, "Languages offered to users."
    )
    default_language: str = _setting("DEFAULT_LANGUAGE", _language, "en", "Language when nothing else is known.")
    default_timezone: str = _setting(
        "DEFAULT_TIMEZONE", _timezone, "UTC",
        "Time zone of new users: an IANA name (Asia/Almaty; in any case, or the city alone: Almaty) or an offset"
        " (UTC+5).",
    )
    registration: str = _setting(
        "REGISTRATION", _registration, "approval", "approval, open or closed: what happens when someone new writes."
    )
    admin_telegram_ids: tuple[int, ...] = _setting(
        "ADMIN_TELEGRAM_IDS", _telegram_ids, (),
        "Telegram ids of admins: they approve new users and manage shared habits and rewards"
        " (made admins at their next message; see docs/bot.md, Admins)."
    )
    airtable_api_key: str | None = _setting(
        "AIRTABLE_API_KEY", _text, None, "Airtable personal access token, for import-airtable."
    )
    airtable_base_id: str | None = _setting("AIRTABLE_BASE_ID", _text, None, "Airtable base (appXXXX) to import.")
    airtable_endpoint_url: str | None = _setting(
        "AIRTABLE_ENDPOINT_URL", _text, None, "Airtable API URL, for a proxy; unset = https://api.airtable.com."
    )

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str] | None = None,
        env_file: str | os.PathLike[str] | None = ".env",
        **overrides: Any,
    ) -> Settings:
        """Read the settings: ``overrides`` (CLI options) > ``environ`` > ``env_file``."""
        values: dict[str, str | None] = {}
        if env_file is not None and Path(env_file).is_file():
            values.update(dotenv_values(env_file))
        values.update(os.environ if environ is None else environ)
        kwargs: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = values.get(spec.metadata["env"])
            if raw is not None and raw.strip() != "":
                kwargs[spec.name] = spec.metadata["parse"](spec.metadata["env"], raw)
        specs = {spec.name: spec for spec in dataclasses.fields(cls)}
        for name, value in overrides.items():
            if value is None:
                continue
            spec = specs[name]
            # Strings (CLI options) go through the same parser as the environment.
            kwargs[name] = spec.metadata["parse"](spec.metadata["env"], value) if isinstance(value, str) else value
        settings = cls(**kwargs)
        if settings.default_language not in settings.supported_languages:
            raise ConfigError(
                f"DEFAULT_LANGUAGE ({settings.default_language}) must be one of SUPPORTED_LANGUAGES"
                f" ({','.join(settings.supported_languages)})"
            )
        return settings

    def require(self, name: str) -> Any:
        """Return a setting that this command cannot do without, or say which variable to set."""
        value = getattr(self, name)
        if value in (None, "", ()):
            env = next(f.metadata["env"] for f in dataclasses.fields(self) if f.name == name)
            raise ConfigError(f"{env} is not set: put it in the environment or in .env")
        return value

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, help) for every setting, for docs and ``--help``."""
        rows = []
        for spec in dataclasses.fields(cls):
            default = spec.default
            if isinstance(default, tuple):
                default = ",".join(str(d) for d in default)
            rows.append((spec.metadata["env"], "" if default is None else str(default), spec.metadata["help"]))
        return rows
