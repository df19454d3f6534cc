"""The webhook's waitress server: its network loop waits for a task thread that is
writing a response, instead of going round and round until it is done."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import pytest
from waitress import wasyncore

from habitreward.server.http import FlushWaitingChannel, make_http_server

pytestmark = pytest.mark.no_db


def hello(environ, start_response):
    body = b"hello"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server():
    server = make_http_server(hello, host="127.0.0.1", port=0, threads=2)
    loop = threading.Thread(target=server.run, daemon=True)
    loop.start()
    yield server
    server.close()
    loop.join(5)


def channels(server) -> list:
    return [c for c in list(server._map.values()) if isinstance(c, FlushWaitingChannel)]


def test_the_server_answers_through_the_waiting_channel(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=5)
    for _ in range(3):  # keep-alive: one connection, several requests
        conn.request("GET", "/")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"hello")
    assert len(channels(server)) == 1
    conn.close()


def test_every_listening_socket_gets_the_waiting_channel():
    first, second = socket.socket(), socket.socket()
    for listening in (first, second):
        listening.bind(("127.0.0.1", 0))
    server = make_http_server(hello, sockets=[first, second], threads=1)
    try:
        listeners = [s for s in server.map.values() if hasattr(s, "channel_class")]
        assert len(listeners) == 2
        assert all(s.channel_class is FlushWaitingChannel for s in listeners)
    finally:
        server.close()


def test_the_loop_sends_what_a_writing_task_thread_leaves_once_it_lets_go():
    """The loop finds a response in the buffer while a task thread holds the buffer's lock
    (it is sending it itself): it waits for the lock and sends what is left. waitress's own
    loop gives up at once and, the socket being writable, comes straight back: the spin."""
    server = make_http_server(hello, host="127.0.0.1", port=0, threads=1)
    client = socket.create_connection(("127.0.0.1", server.effective_port), timeout=5)
    try:
        wasyncore.poll(0.5, server._map)  # accept the connection
        [channel] = channels(server)
        channel.requests = [object()]  # a task is running: only the lockable flush applies
        channel.outbufs[-1].append(b"left by the task")
        channel.total_outbufs_len = len(b"left by the task")
        holding = threading.Event()

        def task_thread_writing() -> None:
            with channel.outbuf_lock:
                holding.set()
                time.sleep(0.3)

        writer = threading.Thread(target=task_thread_writing)
        writer.start()
        holding.wait(5)
        started = time.monotonic()
        channel.handle_write()
        waited = time.monotonic() - started
        writer.join()
        assert channel.total_outbufs_len == 0, "the loop gave up instead of waiting for the task thread"
        assert waited >= 0.2  # it waited for the lock rather than returning at once
        assert client.recv(100) == b"left by the task"
    finally:
        client.close()
        server.close()
