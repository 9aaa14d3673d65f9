"""The verification client against a server that answers a body it refuses before reading
it and closes (as Granian does with a 413): the answer must still be read, not a broken pipe."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from servebench.client import Client

pytestmark = pytest.mark.unit

EARLY_ANSWER = (
    b"HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\n"
    b"content-length: 16\r\nconnection: close\r\n\r\n"
    b'{"error": "big"}'
)


@contextmanager
def early_answering_server() -> Iterator[int]:
    """Reads the request's head only, answers 413 and closes: the client is still sending."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                head += connection.recv(1024)
            connection.sendall(EARLY_ANSWER)
            connection.shutdown(socket.SHUT_WR)
            # Read a little more, then close with the rest unread, as a server that stops
            # reading a refused body does; the client's remaining writes then fail.
            connection.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        listener.close()
        thread.join(timeout=5)


def test_an_answer_sent_before_the_body_was_read_is_read() -> None:
    with early_answering_server() as port, Client("127.0.0.1", port, timeout=10) as client:
        answer = client.request(
            "POST", "/age", b" " * (8 << 20), {"Content-Type": "application/json"}
        )
    assert answer.status == 413
    assert answer.body == {"error": "big"}


def test_a_refused_connection_still_raises() -> None:
    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
    with Client("127.0.0.1", port, timeout=2) as client, pytest.raises(ConnectionError):
        client.request("GET", "/health")
