"""CPU of one Bot API call (a reply), by HTTP client, against a minimal local server.

    python bench/bot_api_call.py [--calls 3000] [--rounds 3]

The reply is the largest step of a completion (docs/performance.md, "Where the CPU
goes"). This measures the calling process's user and system CPU per ``sendMessage``
with a reply keyboard, one call at a time over one kept-alive connection, through:

- the screens' path: ``api_calls.send_html`` -> PTB's ``Bot._post`` -> ``BotApiRequest``
  (``TELEGRAM_HTTP_CLIENT=builtin``, the default: habitreward's own HTTP/1.1 client);
- ``BotApiRequest.do_request`` alone (what PTB's request path adds is the difference);
- the same two through ``AiohttpRequest`` (``TELEGRAM_HTTP_CLIENT=aiohttp``);
- PTB's own ``HTTPXRequest`` (``TELEGRAM_HTTP_CLIENT=httpx``), through ``Bot._post``;
- one HTTP/1.1 exchange written and read on a bare asyncio stream: no client at all,
  the floor any client's cost is above.

The server answers every request with the same small JSON in another process, so its
CPU is not counted. Compare the rows of one run; the numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import statistics
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable

from telegram.ext import ExtBot
from telegram.request import HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter  # how Bot._post builds a call's data

from habitreward.bot import api_calls
from habitreward.bot.keyboards import inline_keyboard
from habitreward.bot.request import AiohttpRequest, BotApiRequest

TOKEN = "123456:bench"
SERVER = textwrap.dedent(
    """
    import asyncio, sys
    body = b'{"ok":true,"result":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"text":"ok"}}'
    answer = (b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
              b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)

    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\\r\\n\\r\\n")
                length = 0
                for line in head.split(b"\\r\\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
        print("ready", flush=True)
        await server.serve_forever()

    asyncio.run(main())
    """
)
TEXT = "✅ <b>Meditation</b> done. 🔥 Streak: 3 days\n🎁 You got a piece of <b>Coffee</b> (2/3)"
KEYBOARD = inline_keyboard([[("↩️ Undo", "u:12:3456:1700000000")], [("📋 Menu", "menu")]])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


async def per_call(call: Callable[[], Awaitable[object]], calls: int) -> tuple[float, float]:
    """Microseconds of user and system CPU per call, after a warm-up."""
    for _ in range(min(200, calls)):
        await call()
    before = cpu()
    for _ in range(calls):
        await call()
    after = cpu()
    return (1e6 * (after[0] - before[0]) / calls, 1e6 * (after[1] - before[1]) / calls)


async def measure(port: int, calls: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    base = f"http://127.0.0.1:{port}/bot"
    builtin_request, aiohttp_request, httpx_request = BotApiRequest(), AiohttpRequest(), HTTPXRequest()
    builtin_bot = ExtBot(TOKEN, base_url=base, request=builtin_request)
    aiohttp_bot = ExtBot(TOKEN, base_url=base, request=aiohttp_request)
    httpx_bot = ExtBot(TOKEN, base_url=base, request=httpx_request)
    for request in (builtin_request, aiohttp_request, httpx_request):
        await request.initialize()
    parameters = {"chat_id": 1, "text": TEXT, "parse_mode": "HTML",
                  "link_preview_options": {"is_disabled": True}, "reply_markup": KEYBOARD}
    url = f"{base}{TOKEN}/sendMessage"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def bare() -> bytes:
        body = json.dumps(parameters, ensure_ascii=False).encode()
        writer.write(b"POST /bot%s/sendMessage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (TOKEN.encode(), len(body), body))
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return await reader.readexactly(length)

    def do_request(request: BotApiRequest | AiohttpRequest) -> Callable[[], Awaitable[object]]:
        async def call() -> object:
            data = RequestData([RequestParameter.from_input(k, v) for k, v in parameters.items()])
            return await request.do_request(url, "POST", data)
        return call

    ways: dict[str, Callable[[], Awaitable[object]]] = {
        "screens' path: send_html -> Bot._post -> BotApiRequest": lambda: api_calls.send_html(
            builtin_bot, 1, TEXT, KEYBOARD),
        "BotApiRequest.do_request alone": do_request(builtin_request),
        "screens' path: send_html -> Bot._post -> AiohttpRequest": lambda: api_calls.send_html(
            aiohttp_bot, 1, TEXT, KEYBOARD),
        "AiohttpRequest.do_request alone": do_request(aiohttp_request),
        "PTB's HTTPXRequest through Bot._post": lambda: api_calls.send_html(httpx_bot, 1, TEXT, KEYBOARD),
        "bare asyncio stream, one HTTP/1.1 exchange": bare,
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in ways}
    for number in range(1, rounds + 1):
        for name, call in ways.items():
            results[name].append(await per_call(call, calls))
            user, system = results[name][-1]
            print(f"round {number}: {name:<58} user {user:6.1f} us   sys {system:5.1f} us", flush=True)
    writer.close()
    for request in (builtin_request, aiohttp_request, httpx_request):
        await request.shutdown()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000, help="calls per client and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the clients taking turns")
    args = parser.parse_args()
    if args.calls < 1 or args.rounds < 1:
        parser.error("--calls and --rounds must be at least 1")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        if server.stdout is None or server.stdout.readline().strip() != "ready":
            sys.exit("the local server did not start")
        results = asyncio.run(measure(port, args.calls, args.rounds))
    finally:
        server.terminate()
        server.wait(10)
    print(f"median of {args.rounds} round(s), CPU of this process per call:")
    for name, rows in results.items():
        user = statistics.median(row[0] for row in rows)
        system = statistics.median(row[1] for row in rows)
        print(f"  {name:<58} user {user:6.1f} us   sys {system:5.1f} us")


if __name__ == "__main__":
    main()
