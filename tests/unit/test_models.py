"""Pure logic of `models` (SPEC 12): names, df output, what a pull still needs, the host's Ollama."""

from __future__ import annotations

import pytest

from ollama_stack_cli.errors import ExitCode, StackError
from ollama_stack_cli.schemas import ModelStore
from ollama_stack_cli.stack.health import native_address
from ollama_stack_cli.stack.model_space import parse_df, require_room
from ollama_stack_cli.stack.models import PullMeter, canonical, validate_names


@pytest.mark.parametrize("name", ["llama3.2", "qwen2.5:7b", "ns/model:tag", "hf.co/user/repo:Q4_K_M", "h:5000/a/b:c"])
def test_model_names_people_use_are_accepted(name: str) -> None:
    assert validate_names([name]) == [name]


@pytest.mark.parametrize("name", ["", "bad name", "../x", "a;b", "-x", "a:b:c", "x@y", "a/b/c/d", "tag:"])
def test_names_no_model_can_have_are_usage_errors(name: str) -> None:
    with pytest.raises(StackError) as caught:
        validate_names(["llama3.2", name])
    assert caught.value.code == ExitCode.USAGE


def test_a_name_without_a_tag_is_latest() -> None:
    assert canonical("llama3.2") == "llama3.2:latest"
    assert canonical("ns/m:7b") == "ns/m:7b"
    assert canonical("host:5000/ns/m") == "host:5000/ns/m:latest"


def test_df_output_gives_bytes_available_and_the_mount() -> None:
    out = (
        "Filesystem  1024-blocks  Used Available Capacity Mounted on\r\ntmpfs  65536  1032  64504  2% /root/.ollama\r\n"
    )
    assert parse_df(out) == (64504 * 1024, "/root/.ollama")
    assert parse_df("df: /x: No such file or directory") is None


def test_the_meter_counts_what_each_layer_still_needs_when_first_seen() -> None:
    meter = PullMeter("m")
    assert not meter.update({"status": "pulling manifest"})
    assert meter.update({"status": "pulling a", "digest": "sha256:a", "total": 100, "completed": 30})
    assert not meter.update({"status": "pulling a", "digest": "sha256:a", "total": 100, "completed": 90})
    assert meter.update({"status": "pulling b", "digest": "sha256:b", "total": 10, "completed": 10})  # present
    assert meter.to_fetch == 70
    transfer = meter.transfer()
    assert (transfer.completed, transfer.total) == (100, 110)


def test_a_pull_that_needs_more_than_is_free_is_refused_naming_both() -> None:
    store = ModelStore(where="/root/.ollama in the ollama container (p)", available=50_000_000)
    require_room("m", 50_000_000, store)
    with pytest.raises(StackError) as caught:
        require_room("big:1", 104_857_600, store)
    assert caught.value.slug == "insufficient_space"
    assert "big:1" in caught.value.message and "104.9 MB" in caught.value.message
    assert "50.0 MB is free at /root/.ollama" in caught.value.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", ("127.0.0.1", 11434)), ("0.0.0.0", ("127.0.0.1", 11434)), ("http://10.0.0.2:1234", ("10.0.0.2", 1234)),
     ("127.0.0.1:5555", ("127.0.0.1", 5555))],
)  # fmt: skip
def test_the_native_ollama_is_where_ollama_host_says(
    value: str, expected: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    assert native_address() == expected
