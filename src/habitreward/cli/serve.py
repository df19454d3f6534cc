"""``habitreward serve`` and ``habitreward webhook set|info|delete``.

Heavy imports (telegram, waitress) happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import click

from habitreward.cli.app import AppContext, cli, pass_app
from habitreward.cli.output import emit, emit_json, json_option
from habitreward.redaction import hide_url_credentials


@contextmanager
def _telegram_errors(app: AppContext) -> Iterator[None]:
    """Bot API failures become one line (with the token and secret taken out)."""
    from telegram.error import TelegramError

    try:
        yield
    except TelegramError as exc:
        raise click.ClickException(f"Telegram: {exc}") from None  # redacted by HabitRewardGroup


@contextmanager
def _set_webhook_errors(app: AppContext) -> Iterator[None]:
    """``serve --set-webhook``: a failed setWebhook refuses the start; the one error names the
    option, the call and Telegram's answer, and says the server is gone (it said it listened)."""
    from telegram.error import BadRequest, NetworkError, TelegramError

    from habitreward.bot.request import surely_not_sent

    try:
        yield
    except TelegramError as exc:
        if surely_not_sent(exc):
            what = f"setWebhook could not reach Telegram ({exc})"
        elif isinstance(exc, NetworkError) and not isinstance(exc, BadRequest):  # (BadRequest is a NetworkError)
            what = (f"setWebhook got no answer from Telegram ({exc}), and may have been done (habitreward webhook"
                    " info tells)")
        else:
            # Without the credentials an operator may put in it (user:password@, ?token=), as the
            # other URLs the command line shows (`webhook set` and `info` too); the path is shown.
            url = hide_url_credentials(app.settings.telegram_webhook_url or "")
            what = f"Telegram refused setWebhook for {url}: {exc}"
        raise click.ClickException(f"--set-webhook: {what}; serve stopped") from None  # redacted by HabitRewardGroup


def _protect_logs(app: AppContext) -> None:
    """No log line (ours, PTB's, httpx's) may show the token or the webhook secret."""
    from habitreward.server.logging_filters import install_redaction
    from habitreward.server.secrets import secrets_of

    install_redaction(secrets_of(app.settings))


class CpuChoiceParam(click.ParamType):
    name = "auto|off|CPUS"

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from habitreward.server.affinity import CpuChoice, parse_cpu_choice

        if isinstance(value, CpuChoice):
            return value
        try:
            return parse_cpu_choice(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@cli.command()
@click.option("--webhook", is_flag=True, help="Serve a webhook under waitress instead of long polling.")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="HABITREWARD_HOST", show_envvar=True,
              help="Address the webhook server listens on (use 0.0.0.0 only without a proxy in front); a name"
                   " that resolves to several addresses listens on the first.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), envvar="HABITREWARD_PORT",
              show_envvar=True, help="Port of the webhook server (0 = any free port, printed at start).")
@click.option("--threads", default=8, show_default=True, type=click.IntRange(1, 256), envvar="HABITREWARD_THREADS",
              show_envvar=True, help="waitress worker threads answering webhook requests.")
@click.option("--concurrency", default=16, show_default=True, type=click.IntRange(1, 10000),
              help="Updates of different users processed at the same time (one user's are always in order).")
@click.option("--set-webhook", "set_webhook_on_start", is_flag=True,
              help="Register TELEGRAM_WEBHOOK_URL with Telegram (setWebhook with the secret) once listening,"
                   " after the line that says where (Telegram posts at once; a refused start changes nothing);"
                   " a setWebhook that fails stops serve with Telegram's answer (exit code 1).")
@click.option("--shutdown-timeout", default=30.0, show_default=True, type=click.FloatRange(0),
              help="Seconds to finish the updates being processed after SIGTERM/SIGINT (updates received and not"
                   " started yet are left for the next start); the rest run on the next start too (those already"
                   " applied do not: only their replies are cut short).")
@click.option("--poll-timeout", default=30, show_default=True, type=click.IntRange(0, 50),
              envvar="HABITREWARD_POLL_TIMEOUT", show_envvar=True,
              help="Long-polling wait of one getUpdates call, in seconds (polling mode; refused with --webhook"
                   " when given on the command line).")
@click.option("--rate-limit/--no-rate-limit", default=True, show_default=True, envvar="HABITREWARD_RATE_LIMIT",
              show_envvar=True,
              help="Keep replies under Telegram's flood limits (about 30 messages/s overall) with PTB's "
                   "AIORateLimiter, when installed; a 429 in one chat holds only that chat's replies. Turn off "
                   "only for a Bot API without limits (tests, benchmarks).")
@click.option("--sweep-interval", default=30.0, show_default=True, type=click.FloatRange(0.2),
              help="Seconds between looks for updates a crashed process left unprocessed (with several "
                   "processes, the survivors finish them; on start every such update is taken).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), envvar="HABITREWARD_WORKERS",
              show_envvar=True,
              help="Webhook worker processes sharing the port, on SQLite or PostgreSQL (one process uses one "
                   "CPU core: start with one per core). More than 1: this process supervises them (restarts "
                   "one that dies, forwards SIGTERM/SIGINT). Webhook only.")
@click.option("--pin-cpu", default="auto", show_default=True, type=CpuChoiceParam(), metavar="auto|off|CPUS",
              envvar="HABITREWARD_PIN_CPU", show_envvar=True,
              help="Bind each serving process, all its threads, to one CPU core: it runs Python on one core "
                   "at a time anyway, and its threads passing the interpreter lock between cores cost a quarter "
                   "more CPU per update or worse. auto: the core it starts on, or one no other serve is bound to "
                   "(worker N of --workers: the N-th core); a list like 0,2-3: cores to take from, in turn; "
                   "off: leave it to the OS.")
@click.option("--worker", "worker_spec", hidden=True, metavar="N:LISTEN_FD:CONTROL_FD",
              help="Internal: run as worker N of a `serve --workers` supervisor.")
@pass_app
def serve(app: AppContext, webhook: bool, host: str, port: int, threads: int, concurrency: int,
          set_webhook_on_start: bool, shutdown_timeout: float, poll_timeout: int, rate_limit: bool,
          sweep_interval: float, workers: int, pin_cpu: Any, worker_spec: str | None) -> None:
    """Run the bot until SIGTERM or Ctrl+C.

    Without --webhook: long polling (getUpdates), nothing to expose; good for a
    single small install. With --webhook: a WSGI server (waitress) on HOST:PORT
    that Telegram calls through your HTTPS reverse proxy at TELEGRAM_WEBHOOK_URL;
    it checks the X-Telegram-Bot-Api-Secret-Token header (TELEGRAM_WEBHOOK_SECRET,
    or a secret derived from the token) and answers GET /healthz.

    Refuses to start when LLM_MODEL is set and litellm is not installed.
    Pending database migrations are applied first. Every update is stored in
    the database before it is acknowledged and is applied exactly once, also
    after a crash, a restart or a re-delivery (see docs/deployment.md).

    \b
    Examples:
      habitreward serve
      habitreward serve --webhook --port 8080 --set-webhook
      habitreward serve --webhook --workers 4
    """
    from habitreward.engine import Engine
    from habitreward.server.service import ServeOptions, Service

    settings = app.settings
    settings.require("telegram_bot_token")
    if settings.llm_model:  # now, not as a log line while every uncertain message goes unmatched
        from habitreward.nlp.llm import check_available

        check_available()
    _protect_logs(app)
    worker = _parse_worker(worker_spec) if worker_spec else None
    if workers > 1 and not webhook:
        source = click.get_current_context().get_parameter_source("workers")
        set_in = "" if source is click.core.ParameterSource.COMMANDLINE else " (HABITREWARD_WORKERS is set)"
        raise click.ClickException(f"--workers needs --webhook{set_in}: Telegram allows one getUpdates consumer"
                                   " per bot")
    if not webhook:  # a forgotten --webhook: polling would listen on nothing and remove the webhook
        _refuse_listener_options_without_webhook()
    else:  # a webhook polls nothing: a typed --poll-timeout would be ignored without a word
        _refuse_polling_options_with_webhook()
    on_ready = None
    if set_webhook_on_start and worker is None:
        if not webhook:
            raise click.UsageError("--set-webhook needs --webhook")
        from habitreward.server.webhook_admin import registration

        registration(settings)  # no URL (or not https): one error now, not after a start and a stop

        def on_ready() -> None:  # once listening: a start refused (port, lock) tells Telegram nothing
            _set_webhook(app, max_connections=40, drop_pending=False, as_json=False, errors=_set_webhook_errors)
    engine = Engine(settings, plugin_manager=app.plugin_manager)
    options = ServeOptions(host=host, port=port, threads=threads, concurrency=concurrency,
                           shutdown_timeout=shutdown_timeout, poll_timeout=poll_timeout, rate_limit=rate_limit,
                           sweep_interval=sweep_interval, workers=1 if worker else workers, worker=worker,
                           pin_cpu=pin_cpu)
    if workers > 1 and worker is None:
        options.worker_command = _worker_command(options)
    service = Service(engine, options, announce=lambda line: click.echo(line), on_ready=on_ready)
    if webhook:
        service.serve_webhook()
    else:
        service.serve_polling()


def _refuse_listener_options_without_webhook() -> None:
    """Only when typed on the command line: HABITREWARD_PORT and the like may serve both modes."""
    ctx = click.get_current_context()
    given = [f"--{name}" for name in ("host", "port", "threads")
             if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE]
    if given:
        raise click.UsageError(f"{' and '.join(given)} {'is' if len(given) == 1 else 'are'} for --webhook; without it"
                               " serve polls Telegram, listens on no port, and removes a webhook that is set")


def _refuse_polling_options_with_webhook() -> None:
    """Only when typed on the command line: HABITREWARD_POLL_TIMEOUT may serve both modes."""
    ctx = click.get_current_context()
    if ctx.get_parameter_source("poll_timeout") is click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("--poll-timeout is for polling (serve without --webhook); with --webhook Telegram"
                               " posts the updates and nothing is polled")


def _parse_worker(spec: str) -> tuple[int, int, int]:
    try:
        number, listen_fd, control_fd = (int(part) for part in spec.split(":"))
    except ValueError:
        raise click.UsageError("--worker is internal (N:LISTEN_FD:CONTROL_FD)") from None
    return number, listen_fd, control_fd


def _worker_command(options: Any) -> list[str]:
    """The command line of one worker: this interpreter, the same global options, serve --webhook
    with the same settings (the supervisor adds ``--worker``)."""
    import sys

    root = click.get_current_context().find_root()
    command = [sys.executable, "-m", "habitreward"]
    if root.params.get("database_url"):
        command += ["--database-url", root.params["database_url"]]
    if root.get_parameter_source("env_file") is not click.core.ParameterSource.DEFAULT:
        command += ["--env-file", root.params["env_file"]]  # the default .env may be missing
    if root.params.get("verbose"):
        command.append("-" + "v" * root.params["verbose"])
    command += ["serve", "--webhook", "--host", options.host, "--port", str(options.port),
                "--threads", str(options.threads), "--concurrency", str(options.concurrency),
                "--shutdown-timeout", str(options.shutdown_timeout),
                "--rate-limit" if options.rate_limit else "--no-rate-limit",
                "--sweep-interval", str(options.sweep_interval), "--pin-cpu", str(options.pin_cpu),
                "--workers", "1"]
    return command


@cli.group()
def webhook() -> None:
    """Register the webhook with Telegram, check it, or remove it.

    Uses TELEGRAM_BOT_TOKEN, TELEGRAM_WEBHOOK_URL (https) and the secret that
    `habitreward serve --webhook` expects, through TELEGRAM_API_URL when set.
    """


def _set_webhook(app: AppContext, *, max_connections: int, drop_pending: bool, as_json: bool,
                 errors: Callable[[AppContext], AbstractContextManager[None]] = _telegram_errors) -> None:
    from habitreward.server.webhook_admin import set_webhook

    _protect_logs(app)
    with errors(app):
        result = set_webhook(app.settings, max_connections=max_connections, drop_pending=drop_pending)
    result = {**result, "url": hide_url_credentials(result["url"])}  # as the start error and `info` show it
    emit(as_json, result, lambda: click.echo(
        f"Webhook set: {result['url']} (max {result['max_connections']} connections,"
        f" updates: {', '.join(result['allowed_updates'])}"
        f"{', pending updates dropped' if drop_pending else ''})"
    ))


@webhook.command("set")
@click.option("--max-connections", default=40, show_default=True, type=click.IntRange(1, 100),
              help="Most simultaneous HTTPS connections Telegram opens to the webhook.")
@click.option("--drop-pending", is_flag=True, help="Throw away the updates Telegram is still holding.")
@json_option
@pass_app
def webhook_set(app: AppContext, max_connections: int, drop_pending: bool, as_json: bool) -> None:
    """Point Telegram at TELEGRAM_WEBHOOK_URL, with the secret and the update types the bot handles."""
    _set_webhook(app, max_connections=max_connections, drop_pending=drop_pending, as_json=as_json)


@webhook.command("info")
@json_option
@pass_app
def webhook_info(app: AppContext, as_json: bool) -> None:
    """Show what Telegram knows about the webhook: URL, pending updates, last error."""
    from habitreward.server.webhook_admin import webhook_info as get_info

    _protect_logs(app)
    with _telegram_errors(app):
        info = get_info(app.settings)
    if info.get("url"):  # what was registered, without the credentials an operator may have put in it
        info = {**info, "url": hide_url_credentials(info["url"])}

    def table() -> None:
        rows: list[tuple[str, Callable[[Any], str]]] = [
            ("url", lambda v: v or "(none: the bot uses polling)"),
            ("pending_update_count", str),
            ("max_connections", str),
            ("allowed_updates", lambda v: ", ".join(v) if v else "(all but some)"),
            ("last_error_message", str),
            ("last_error_date", str),
            ("ip_address", str),
        ]
        for key, show in rows:
            if key in info or key == "url":
                click.echo(f"{key.replace('_', ' ')}: {show(info.get(key))}")

    emit(as_json, info, table)


@webhook.command("delete")
@click.option("--drop-pending", is_flag=True, help="Also throw away the updates Telegram is still holding.")
@pass_app
def webhook_delete(app: AppContext, drop_pending: bool) -> None:
    """Remove the webhook (needed before polling; `serve` without --webhook does it itself)."""
    from habitreward.server.webhook_admin import delete_webhook

    _protect_logs(app)
    with _telegram_errors(app):
        delete_webhook(app.settings, drop_pending=drop_pending)
    click.echo("Webhook removed" + (" and pending updates dropped." if drop_pending else "."))


__all__ = ["serve", "webhook", "emit_json"]
