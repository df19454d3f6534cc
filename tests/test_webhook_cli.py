"""``habitreward webhook set|info|delete`` against the Bot API stand-in (no database involved)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from habitreward.cli import cli
from habitreward.server.secrets import derive_webhook_secret
from habitreward.testing.builders import message_update

pytestmark = pytest.mark.no_db

TOKEN = "777000:WEBHOOK-CLI-TOKEN-xyz"
URL = "https://bot.example.org/webhook/telegram"


@pytest.fixture
def run(botapi, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    base_env = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": botapi.base_url, "TELEGRAM_WEBHOOK_URL": URL,
                "TELEGRAM_WEBHOOK_SECRET": "", "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.db'}"}

    def invoke(*args: str, **env: str):
        return CliRunner().invoke(cli, list(args), env={**base_env, **env}, catch_exceptions=False)

    return invoke


def test_set_registers_url_secret_limits_and_update_types(run, botapi):
    botapi.queue_update(message_update(1, "kept"))
    result = run("webhook", "set", "--max-connections", "12")
    assert result.exit_code == 0, result.output
    assert f"Webhook set: {URL}" in result.output
    registered = botapi.webhook
    assert registered["url"] == URL
    assert registered["secret_token"] == derive_webhook_secret(TOKEN)  # what `serve --webhook` expects
    assert registered["max_connections"] == 12
    assert registered["allowed_updates"] == ["message", "callback_query"]
    assert botapi.pending_updates() == 1  # pending updates are kept unless asked
    assert TOKEN not in result.output and derive_webhook_secret(TOKEN) not in result.output


def test_drop_pending_only_when_asked(run, botapi):
    botapi.queue_update(message_update(1, "old"))
    assert run("webhook", "set").exit_code == 0
    assert botapi.pending_updates() == 1
    assert run("webhook", "set", "--drop-pending").exit_code == 0
    assert botapi.pending_updates() == 0
    assert botapi.calls_of("setWebhook")[-1]["drop_pending_updates"] is True


def test_info_and_delete(run, botapi):
    run("webhook", "set")
    info = run("webhook", "info")
    assert info.exit_code == 0 and f"url: {URL}" in info.output and "pending update count: 0" in info.output
    as_json = json.loads(run("webhook", "info", "--json").output)
    assert as_json["url"] == URL and as_json["allowed_updates"] == ["message", "callback_query"]
    deleted = run("webhook", "delete")
    assert deleted.exit_code == 0 and "Webhook removed." in deleted.output
    assert botapi.webhook["url"] == ""
    assert "(none: the bot uses polling)" in run("webhook", "info").output


def test_configured_secret_is_used_and_checked(run, botapi):
    assert run("webhook", "set", TELEGRAM_WEBHOOK_SECRET="Custom_secret-16").exit_code == 0
    assert botapi.webhook["secret_token"] == "Custom_secret-16"
    bad = run("webhook", "set", TELEGRAM_WEBHOOK_SECRET="no spaces allowed!")
    assert bad.exit_code == 1 and "TELEGRAM_WEBHOOK_SECRET has a space and '!' in it" in bad.output
    short = run("webhook", "set", TELEGRAM_WEBHOOK_SECRET="abc")
    assert short.exit_code == 1 and "TELEGRAM_WEBHOOK_SECRET is only 3 characters long" in short.output
    assert botapi.webhook["secret_token"] == "Custom_secret-16"  # nothing was sent


def test_clear_errors_for_missing_or_wrong_settings(run, botapi):
    missing = run("webhook", "set", TELEGRAM_WEBHOOK_URL="")
    assert missing.exit_code == 1 and "Error: TELEGRAM_WEBHOOK_URL is not set" in missing.output
    plain_http = run("webhook", "set", TELEGRAM_WEBHOOK_URL="http://bot.example.org/hook")
    assert plain_http.exit_code == 1 and "must be an https:// URL" in plain_http.output
    no_token = run("webhook", "info", TELEGRAM_BOT_TOKEN="")
    assert no_token.exit_code == 1 and "TELEGRAM_BOT_TOKEN is not set" in no_token.output
    botapi.fail_next("setWebhook", error_code=400, description="Bad Request: bad webhook: HTTPS url must be provided")
    refused = run("webhook", "set")
    assert refused.exit_code == 1 and "Telegram: " in refused.output and "bad webhook" in refused.output.lower()
    assert "Traceback" not in refused.output
    assert botapi.webhook["url"] == ""


def test_serve_needs_a_token(run):
    result = run("serve", TELEGRAM_BOT_TOKEN="")
    assert result.exit_code == 1 and "TELEGRAM_BOT_TOKEN is not set" in result.output
    both = run("serve", "--set-webhook")
    assert both.exit_code == 2 and "--set-webhook needs --webhook" in both.output


def test_serve_refuses_an_llm_model_without_litellm(run, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "litellm" else real_find_spec(name, *a))
    result = run("serve", "--webhook", "--port", "0", LLM_MODEL="openai/gpt-4o-mini")
    assert result.exit_code == 1, result.output
    assert "LLM_MODEL is set but litellm is not installed: pip install 'habitreward[llm]'" in result.output


def test_serve_with_an_unreachable_bot_api_is_one_clear_error(run, tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    result = CliRunner().invoke(cli, ["serve", "--webhook", "--port", "0"], env={
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": f"http://127.0.0.1:{closed}/bot",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "HABITREWARD_LOAD_PLUGINS": ""})
    assert result.exit_code == 1, result.output
    assert f"Error: the Bot API at http://127.0.0.1:{closed}/bot could not be reached" in result.output
    assert "TELEGRAM_API_URL" in result.output and TOKEN not in result.output


@pytest.mark.parametrize("client", ["builtin", "aiohttp", "httpx"])
@pytest.mark.parametrize("api_url", ["http://127.0.0.1:9", "http://api.example.org"])
def test_a_bot_api_url_missing_its_bot_suffix_is_an_error_without_the_token(tmp_path, monkeypatch, client, api_url):
    """The Bot API URL is TELEGRAM_API_URL + token: without "/bot" the token lands in the host or
    port, and the HTTP client's error quotes the URL, or only the token's secret half."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["serve", "--webhook", "--port", "0"], env={
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": api_url, "TELEGRAM_HTTP_CLIENT": client,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "HABITREWARD_LOAD_PLUGINS": ""})
    assert result.exit_code == 1, result.output
    assert f"Error: the Bot API at {api_url} could not be reached" in result.output and "[REDACTED]" in result.output
    assert TOKEN not in result.output and TOKEN.split(":")[1] not in result.output


def _serve_once(tmp_path, *args: str, **env: str):
    """``serve --webhook`` that should refuse to start (the Bot API is never reached: none runs)."""
    return CliRunner().invoke(cli, ["serve", "--webhook", *args], env={
        "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": "http://127.0.0.1:9/bot",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "HABITREWARD_LOAD_PLUGINS": "", **env})


def test_an_address_it_cannot_listen_on_is_one_line_before_the_bot_starts(tmp_path, monkeypatch):
    import socket

    monkeypatch.chdir(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        in_use = _serve_once(tmp_path, "--port", port)
    assert in_use.exit_code == 1, in_use.output
    assert f"Error: cannot listen on 127.0.0.1:{port}: Address already in use" in in_use.output
    for host in ("256.1.1.1", "203.0.113.5"):  # no such address; not one of this machine's
        refused = _serve_once(tmp_path, "--host", host, "--port", "0")
        assert refused.exit_code == 1, refused.output
        assert refused.output.startswith(f"Error: cannot listen on {host}:0: "), refused.output
        assert "Traceback" not in refused.output


def test_a_refused_start_with_set_webhook_tells_telegram_nothing(tmp_path, monkeypatch, botapi):
    """The port is taken (the running server's): the start is refused, and Telegram keeps posting
    where it did with the secret it had, so the running server still accepts its updates."""
    import socket

    monkeypatch.chdir(tmp_path)
    import json
    import urllib.request

    registered = json.dumps({"url": "https://old.example.org/webhook/telegram", "secret_token": "the-old-secret-1234"})
    urllib.request.urlopen(urllib.request.Request(f"{botapi.base_url}{TOKEN}/setWebhook", data=registered.encode(),
                                                  headers={"Content-Type": "application/json"}))
    calls_before = len(botapi.calls)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        refused = CliRunner().invoke(cli, ["serve", "--webhook", "--set-webhook", "--port",
                                           str(taken.getsockname()[1])], env={
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": botapi.base_url,
            "TELEGRAM_WEBHOOK_URL": "https://new.example.org/webhook/telegram",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}", "HABITREWARD_LOAD_PLUGINS": ""})
    assert refused.exit_code == 1 and "Error: cannot listen on" in refused.output, refused.output
    assert (botapi.webhook["url"], botapi.webhook["secret_token"]) == (
        "https://old.example.org/webhook/telegram", "the-old-secret-1234")
    assert not any(method == "setWebhook" for method, _ in botapi.calls[calls_before:])


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("failure", ["refused", "cut"])
def test_set_webhook_refused_at_start_is_one_error_naming_it_after_the_listening_line(tmp_path, botapi, workers,
                                                                                    failure):
    """Telegram refuses setWebhook (a host it cannot resolve): the operator read "listening", then
    "stopped; database closed" (with --workers, each worker's "SIGTERM received" and "stopped"),
    then "Error: Telegram: ...", which did not say that --set-webhook had failed. Now: the line
    saying where it listened, then the one error, and exit code 1."""
    import os
    import re
    import subprocess

    from test_serve_kit import HABITREWARD_BIN

    if failure == "refused":
        botapi.fail_next("setWebhook", error_code=400,
                         description="Bad Request: bad webhook: Failed to resolve host: Name or service not known")
    else:  # done, and the answer cut on the way back
        botapi.cut_next("setWebhook")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HABITREWARD_", "DATABASE_"))}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=botapi.base_url, TELEGRAM_WEBHOOK_URL=URL,
               DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}", HABITREWARD_LOAD_PLUGINS="")
    result = subprocess.run([HABITREWARD_BIN, "serve", "--webhook", "--set-webhook", "--port", "0",
                             "--workers", workers], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert len(result.stdout.splitlines()) == 1 and " webhook listening on http://127.0.0.1:" in result.stdout
    said = [line for line in result.stderr.splitlines()
            if line.strip() and not re.search(r" WARNING habitreward.serve: applied \d+ migration", line)]
    assert len(said) == 1, result.stderr
    if failure == "refused":
        assert said[0] == (f"Error: --set-webhook: Telegram refused setWebhook for {URL}: Bad webhook: failed to"
                           " resolve host: name or service not known; serve stopped")
        assert botapi.webhook["url"] == ""
    else:
        assert said[0].startswith("Error: --set-webhook: setWebhook got no answer from Telegram (BadAnswer: 127.0.0.1:")
        assert said[0].endswith("), and may have been done (habitreward webhook info tells); serve stopped")
        assert botapi.webhook["url"] == URL
    assert len(botapi.calls_of("setWebhook")) == 1 and TOKEN not in result.stderr


#: An operator's webhook URL with credentials in it: a short password (under 8 characters, which
#: message redaction leaves) and a token in the query.
URL_WITH_CREDENTIALS = "https://hook:pw1@bot.example.org/webhook/telegram?token=abc123"
URL_SHOWN = "https://[REDACTED]@bot.example.org/webhook/telegram?token=[REDACTED]"


def test_set_webhook_refused_at_start_shows_the_url_without_its_credentials(tmp_path, botapi):
    """The start error printed TELEGRAM_WEBHOOK_URL as configured, its user:password@ and ?token=
    with it. Now as `webhook set` and `webhook info` show it: credentials hidden, the path kept."""
    import os
    import subprocess

    from test_serve_kit import HABITREWARD_BIN

    botapi.fail_next("setWebhook", error_code=400, description="Bad Request: bad webhook: Failed to resolve host")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HABITREWARD_", "DATABASE_"))}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=botapi.base_url, TELEGRAM_WEBHOOK_URL=URL_WITH_CREDENTIALS,
               DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}", HABITREWARD_LOAD_PLUGINS="")
    result = subprocess.run([HABITREWARD_BIN, "serve", "--webhook", "--set-webhook", "--port", "0"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)

    assert result.returncode == 1, result.stderr
    assert (f"Error: --set-webhook: Telegram refused setWebhook for {URL_SHOWN}: Bad webhook: failed to resolve"
            " host; serve stopped") in result.stderr.splitlines(), result.stderr
    assert "pw1" not in result.stderr and "abc123" not in result.stderr


def test_set_and_info_show_the_url_without_its_credentials(run, botapi):
    """`webhook set` and `webhook info` printed the URL whole, as the start error of serve did."""
    done = run("webhook", "set", TELEGRAM_WEBHOOK_URL=URL_WITH_CREDENTIALS)
    info = run("webhook", "info", TELEGRAM_WEBHOOK_URL=URL_WITH_CREDENTIALS)
    as_json = json.loads(run("webhook", "info", "--json", TELEGRAM_WEBHOOK_URL=URL_WITH_CREDENTIALS).output)

    assert botapi.webhook["url"] == URL_WITH_CREDENTIALS  # registered as configured
    assert done.exit_code == 0 and f"Webhook set: {URL_SHOWN} (" in done.output, done.output
    assert info.exit_code == 0 and f"url: {URL_SHOWN}\n" in info.output, info.output
    assert as_json["url"] == URL_SHOWN


@pytest.mark.parametrize("workers", [[], ["--workers", "1"], ["--workers", "2"]], ids=["one", "1", "2"])
def test_a_port_in_use_is_the_first_and_only_thing_said_also_with_workers(tmp_path, workers):
    """As an operator reads it: the error alone, no "stopped; database closed" for a database that
    was never opened. `serve --workers N` applied the migrations (and said so) before it found the
    port taken: the port in use came last, after a database it had changed. Now it is the one
    line, and the database is not touched (not even made)."""
    import os
    import socket
    import subprocess

    from test_serve_kit import HABITREWARD_BIN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HABITREWARD_", "DATABASE_"))}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL="http://127.0.0.1:9/bot",
               DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}", HABITREWARD_LOAD_PLUGINS="")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run([HABITREWARD_BIN, "serve", "--webhook", "--port", port, *workers],
                                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"], result.stderr
    assert result.stdout == ""
    assert sorted(path.name for path in tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["bot.example.org/hook", "not-a-url", "ftp://bot.example.org/hook"])
def test_serve_refuses_a_webhook_url_no_request_could_reach(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    result = _serve_once(tmp_path, "--port", "0", TELEGRAM_WEBHOOK_URL=url)
    assert result.exit_code == 1, result.output
    assert f"Error: TELEGRAM_WEBHOOK_URL must be a URL like https://bot.example.org/webhook/telegram, got {url!r}" \
        in result.output


def test_a_sqlite_file_in_a_missing_directory_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "no-such-dir" / "bot.db"
    for args in (("--webhook", "--port", "0"), ()):
        result = CliRunner().invoke(cli, ["serve", *args], env={
            "TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": "http://127.0.0.1:9/bot",
            "DATABASE_URL": f"sqlite:///{missing}", "HABITREWARD_LOAD_PLUGINS": ""})
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: cannot use the SQLite database {missing}: No such file or directory")
        assert "its directory must exist and be writable" in result.output


@pytest.mark.parametrize("client", ["builtin", "aiohttp", "httpx"])
def test_webhook_commands_use_the_configured_client_and_never_show_the_token(run, botapi, client):
    import socket

    from telegram.request import HTTPXRequest

    from habitreward.bot.request import AiohttpRequest, BotApiRequest
    from habitreward.server.webhook_admin import make_bot
    from habitreward.settings import Settings

    settings = Settings.load(environ={"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_HTTP_CLIENT": client}, env_file=None)
    expected = {"builtin": BotApiRequest, "aiohttp": AiohttpRequest, "httpx": HTTPXRequest}[client]
    assert type(make_bot(settings).request) is expected
    assert run("webhook", "info", TELEGRAM_HTTP_CLIENT=client).exit_code == 0
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    result = run("webhook", "info", TELEGRAM_HTTP_CLIENT=client, TELEGRAM_API_URL=f"http://127.0.0.1:{closed}/bot")
    assert result.exit_code == 1 and result.output.startswith("Error: Telegram:"), result.output
    assert TOKEN not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize(("url", "error"), [
    ("", "Error: TELEGRAM_WEBHOOK_URL is not set: put it in the environment or in .env"),
    ("http://bot.example.org/webhook/telegram", "Error: TELEGRAM_WEBHOOK_URL must be an https:// URL (Telegram only"
     " posts to HTTPS), got 'http://bot.example.org/webhook/telegram'"),
])
def test_set_webhook_without_a_url_it_could_register_is_refused_before_anything_starts(tmp_path, botapi, workers,
                                                                                     url, error):
    """As an operator reads it: the one error, no worker started and stopped, no "stopped; database
    closed" for a bot that was started only to be stopped; the Bot API is not called at all."""
    import os
    import subprocess

    from test_serve_kit import HABITREWARD_BIN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "HABITREWARD_", "DATABASE_"))}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_URL=botapi.base_url, TELEGRAM_WEBHOOK_URL=url,
               DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}", HABITREWARD_LOAD_PLUGINS="")
    result = subprocess.run([HABITREWARD_BIN, "-v", "serve", "--webhook", "--set-webhook", "--port", "0",
                             "--workers", workers], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [error], result.stderr
    assert result.stdout == ""
    assert botapi.calls == [] and not (tmp_path / "serve.db").exists()


@pytest.mark.parametrize("secret", ["secret", "secrets", "characters", "TELEGRAM", "token"])
def test_a_weak_secret_is_refused_with_a_message_a_word_as_secret_does_not_garble(run, botapi, secret):
    """The refused secret is not redacted where that word happens to be in the message (it said
    "TELEGRAM_WEBHOOK_[REDACTED]" for the secret SECRET): it is not in force, and the message names
    the setting and what is wrong with it, never the value."""
    expected = (f"Error: TELEGRAM_WEBHOOK_SECRET is only {len(secret)} characters long (a short secret can be"
                " guessed, and it is all a forged update needs); it must be 16-256 characters of A-Z, a-z, 0-9,"
                " _ and -. Leave it unset to use one derived from the token, or make one with:"
                " python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    for args in (("webhook", "set"), ("serve", "--webhook", "--port", "0")):
        result = run(*args, TELEGRAM_WEBHOOK_SECRET=secret)
        assert result.exit_code == 1, result.output
        assert result.output.strip() == expected
    assert botapi.webhook["url"] == ""


@pytest.mark.parametrize(("secret", "what"), [
    ("d3Jvbmcgc2VjcmV0IGJ1dCBsb25n+/==", "has '+', '/' and '=' in it, which Telegram does not accept"),
    ("${WEBHOOK_SECRET_FROM_THE_VAULT}", "has '$', '{' and '}' in it, which Telegram does not accept"),
    ("my long enough secret", "has a space in it, which Telegram does not accept"),
    ("x" * 257, "is 257 characters long; Telegram accepts at most 256"),
])
def test_a_secret_telegram_refuses_is_told_what_is_wrong_with_it_without_showing_it(run, secret, what):
    """openssl's base64 (+ / =), a variable nothing expanded, a phrase: the message says which
    characters, so the operator sees the mistake; the secret itself is not in it."""
    for args in (("webhook", "set"), ("serve", "--webhook", "--port", "0")):
        result = run(*args, TELEGRAM_WEBHOOK_SECRET=secret)
        assert result.exit_code == 1, result.output
        assert result.output.startswith(f"Error: TELEGRAM_WEBHOOK_SECRET {what}; it must be 16-256 characters of"
                                        " A-Z, a-z, 0-9, _ and -. Leave it unset"), result.output
        assert secret not in result.output


def test_listener_options_without_webhook_are_refused_before_the_webhook_is_removed(run, botapi):
    """`serve --port 8080` (--webhook forgotten) polled, which removes the webhook: the production
    server behind it got nothing from then on. Set in the environment they serve either mode."""
    assert run("webhook", "set").exit_code == 0
    calls = len(botapi.calls)
    for args, named in ((("--port", "8080"), "--port is"), (("--host", "0.0.0.0", "--threads", "4"),
                                                              "--host and --threads are")):
        botapi.fail_next("getMe", error_code=401, description="Unauthorized")  # a start not refused ends at once
        result = run("serve", *args)
        assert result.exit_code == 2, result.output
        assert result.output.splitlines()[-1] == (f"Error: {named} for --webhook; without it serve polls Telegram,"
                                                  " listens on no port, and removes a webhook that is set")
    assert [method for method, _ in botapi.calls[calls:]] == [] and botapi.webhook["url"] == URL


def test_poll_timeout_with_webhook_is_refused_instead_of_ignored(run, botapi):
    """`serve --webhook --poll-timeout 10` started and never polled: the option did nothing, without
    a word. Set in the environment (HABITREWARD_POLL_TIMEOUT) it serves either mode."""
    botapi.fail_next("getMe", error_code=401, description="Unauthorized")  # a start not refused ends at once
    typed = run("serve", "--webhook", "--port", "0", "--poll-timeout", "10")
    assert typed.exit_code == 2, typed.output
    assert typed.output.splitlines()[-1] == ("Error: --poll-timeout is for polling (serve without --webhook); with"
                                             " --webhook Telegram posts the updates and nothing is polled")
    assert botapi.calls == []
    from_env = run("serve", "--webhook", "--port", "0", HABITREWARD_POLL_TIMEOUT="10")
    assert from_env.exit_code == 1 and "refused TELEGRAM_BOT_TOKEN (invalid token)" in from_env.output, from_env.output
