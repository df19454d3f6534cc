"""Built-in plugin: the core tables, registered like any plugin's so export, import and
user deletion treat core and plugin data through one path."""

from __future__ import annotations

from collections.abc import Callable

from habitreward.hookspecs import hookimpl
from habitreward.models import CORE_MODELS


@hookimpl(tryfirst=True)
def habitreward_register_models(register: Callable[..., None]) -> None:
    register(*CORE_MODELS)
