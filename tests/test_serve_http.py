"""The webhook's waitress server: its network loop waits for a task thread that is
writing a response, instead of going round and round until it is done."""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def running(server):
    """waitress's network loop on a thread, stopped before the server is closed (closing
    it under a running loop makes that loop's select() fail on a closed socket)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(5)
        server.close()


@pytest.fixture
def server():
    with running(make_http_server(hello, host="127.0.0.1", port=0, threads=2)) as server:
        yield server


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


@pytest.mark.parametrize("renamed", ["_flush_some_if_lockable", "_flush_some"])
def test_a_waitress_without_the_changed_methods_serves_with_its_own_channel(monkeypatch, caplog, renamed):
    from waitress.channel import HTTPChannel

    monkeypatch.delattr(HTTPChannel, renamed)  # as a future waitress might
    with running(make_http_server(hello, host="127.0.0.1", port=0, threads=1)) as server:
        assert server.channel_class is HTTPChannel
        assert f"no HTTPChannel.{renamed}" in caplog.text
        monkeypatch.undo()  # waitress's own channel (needing its own methods) serves
        conn = http.client.HTTPConnection("127.0.0.1", server.effective_port, timeout=5)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"hello")
        conn.close()


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


def test_a_response_larger_than_the_buffer_limit_reaches_a_slow_reader_whole():
    """A task that writes more than the buffer holds waits for the network loop to make room;
    the loop, now waiting for the buffer's lock rather than trying it, must never wait for a
    task that is itself waiting for the loop."""
    chunk, chunks = b"x" * 65536, 64  # 4 MiB against a 256 KiB buffer limit

    def big(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(chunk) * chunks))])
        return (chunk for _ in range(chunks))

    server = make_http_server(big, host="127.0.0.1", port=0, threads=2, outbuf_high_watermark=262144)
    with running(server):
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)  # small: the server's buffer fills
        client.settimeout(10)
        client.connect(("127.0.0.1", int(server.effective_port)))
        client.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.3)  # not reading yet: the task fills the buffer past its limit and waits
        received = bytearray()
        while b"\r\n\r\n" not in received or len(received) - received.index(b"\r\n\r\n") - 4 < len(chunk) * chunks:
            data = client.recv(65536)
            assert data, "the connection closed before the whole body came"
            received += data
        head, _, body = bytes(received).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and body == chunk * chunks
        client.close()
