"""The upload body read ahead in a thread: order, errors in place, and a clean stop (pure logic)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ollama_stack_cli.docker_client.archives import _read_ahead
from ollama_stack_cli.errors import StackError


def test_chunks_arrive_in_order_and_a_producer_error_is_raised_in_its_place() -> None:
    def source() -> Iterator[bytes]:
        yield b"a"
        yield b"b"
        raise StackError("member x does not match its checksum")

    got = []
    with pytest.raises(StackError, match="member x"):
        for chunk in _read_ahead(source(), depth=1):
            got.append(chunk)
    assert got == [b"a", b"b"]


def test_closing_stops_the_producer_and_closes_its_source() -> None:
    closed = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            while True:
                yield b"x" * 1024
        finally:
            closed.set()

    body = _read_ahead(endless(), depth=2)
    assert next(body) == b"x" * 1024
    body.close()  # what put_archive does when the upload fails
    assert closed.wait(5)
    assert not [t for t in threading.enumerate() if t.name == "ollama-stack-read-ahead"]
