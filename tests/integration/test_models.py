"""`models` (SPEC 12) against the project's Ollama API stand-in, as a user runs them.

One stack for the module: the stand-in image as Ollama, its models volume a 64 MB
tmpfs (the home's override), so "cannot fit" is real: Ollama's own progress stream,
df inside the container, and the bytes on that tmpfs are what the tests look at.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, Result, StackHome, free_ports, make_home
from .tty import run_tty

STANDIN = "ollama-stack-test/ollama-api:current"
TMPFS_OVERRIDE = """\
volumes:
  ollama_models:
    driver_opts: {type: tmpfs, device: tmpfs, o: "size=64m"}
"""
MIB = 1 << 20


@pytest.fixture(scope="module")
def standin_image(docker_client: Any) -> Any:
    try:
        docker_client.images.get(STANDIN)
    except Exception:  # noqa: BLE001 - missing: build it (seconds; the base is cached)
        subprocess.run(["bash", str(REPO / "tests/images/real/build.sh"), "ollama-api"], check=True)
    return docker_client


@pytest.fixture(scope="module")
def models_home(tmp_path_factory: pytest.TempPathFactory, standin_image: Any) -> Iterator[StackHome]:
    home = make_home(tmp_path_factory.mktemp("models"), standin_image)
    env = home.path / ".env"
    env.write_text(env.read_text().replace("OLLAMA_IMAGE=ollama-stack-test/stub:latest", f"OLLAMA_IMAGE={STANDIN}"))
    (home.path / "docker-compose.override.yml").write_text(TMPFS_OVERRIDE)
    home.extra_env["COLUMNS"] = "200"
    try:
        yield home
    finally:
        home.cli("stop")
        home.cleanup()


@pytest.fixture(scope="module")
def models_stack(models_home: StackHome) -> StackHome:
    result = models_home.cli("start", "--platform", "cpu", "--timeout", "60")
    assert result.code == 0, result.stderr
    models_home.start_output = result  # type: ignore[attr-defined]
    return models_home


def ollama_exec(home: StackHome, script: str) -> str:
    container = home.client.containers.get(f"{home.project}-ollama-1")
    code, out = container.exec_run(["sh", "-c", script])
    assert code == 0, out
    return str(out.decode())


def used_bytes(home: StackHome) -> int:
    """Bytes in use on the models tmpfs, as the kernel counts them."""
    return int(ollama_exec(home, "df -Pk /root/.ollama | tail -1").split()[2]) * 1024


def names(home: StackHome) -> list[str]:
    result = home.cli("models", "list", "--json")
    assert result.code == 0, result.stderr
    return [m["name"] for m in result.json()["models"]]


def one_error(result: Result) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


# --- start says what to do next -------------------------------------------------------


def test_start_prints_next_steps_and_the_url(models_stack: StackHome) -> None:
    out = models_stack.start_output.stdout  # type: ignore[attr-defined]
    assert "Next steps" in out
    assert f"Open http://127.0.0.1:{models_stack.ports['webui']} in your browser." in out.split("Next steps", 1)[1]
    # Who becomes admin is asked of Open WebUI itself; the stub is not it (tests/e2e checks both answers).
    assert "first account" not in out
    # The stand-in comes with one model, so no pull is suggested.
    assert "models pull" not in out
    for quiet in (("start", "--json"), ("start", "-q")):
        assert "Next steps" not in models_stack.cli(*quiet).stdout


# --- list and pull --------------------------------------------------------------------


def test_list_shows_the_installed_model_with_size_digest_and_date(models_stack: StackHome) -> None:
    result = models_stack.cli("models", "list", "--json")
    assert result.code == 0, result.stderr
    [model] = result.json()["models"]
    assert model["name"] == "stand-in:latest" and model["size"] > MIB
    assert len(model["digest"]) == 12 and model["full_digest"].startswith(model["digest"])
    assert model["modified_at"][:2] == "20"
    table = models_stack.cli("models", "list")
    assert "stand-in:latest" in table.stdout and model["digest"] in table.stdout


def test_pull_in_a_pipe_writes_real_bytes_with_at_most_a_line_a_second(models_stack: StackHome) -> None:
    began = time.monotonic()
    result = models_stack.cli("models", "pull", "piped:20mb")
    elapsed = time.monotonic() - began

    assert result.code == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.strip().startswith("piped:20mb:")]
    assert progress and " of 21.0 MB" in progress[0], result.stderr
    assert len(progress) <= elapsed + 1, (elapsed, progress)
    assert "piped:20mb: pulled, 21.0 MB" in result.stdout
    assert "\x1b[" not in result.stdout + result.stderr
    blobs = ollama_exec(models_stack, "ls -l /root/.ollama/models/blobs")
    assert str(20 * MIB) in blobs, blobs
    assert "piped:20mb" in names(models_stack)


def test_pull_at_a_terminal_shows_a_bar_with_bytes_and_rate(models_stack: StackHome) -> None:
    result = run_tty(models_stack, "models", "pull", "tty:4mb", columns=120)

    assert result.code == 0, result.stdout
    assert "tty:4mb" in result.stdout and "4.2 MB" in result.stdout
    assert "/s" in result.stdout  # the transfer rate column
    assert "\x1b[?25h" in result.stdout  # the cursor is shown again when the bar ends


def test_pull_with_json_keeps_stdout_one_document_and_progress_on_stderr(models_stack: StackHome) -> None:
    result = models_stack.cli("models", "pull", "json-a:2mb", "json-b:2mb", "--json")

    assert result.code == 0, result.stderr
    document = result.json()
    assert [m["name"] for m in document["models"]] == ["json-a:2mb", "json-b:2mb"]
    assert document["changed"] == ["json-a:2mb", "json-b:2mb"] and document["failed"] == []
    assert all(m["before"] is None and len(m["after"]) == 12 for m in document["models"])
    assert "json-a:2mb:" in result.stderr and "json-b:2mb:" in result.stderr


def test_a_pull_that_cannot_fit_is_refused_and_the_disk_is_untouched(models_stack: StackHome) -> None:
    before = used_bytes(models_stack)

    result = models_stack.cli("models", "pull", "huge:100mb", "--json")

    assert result.code == 1, result.stderr
    error = result.json()["error"]
    assert error["code"] == "insufficient_space"
    message = error["message"]
    assert "huge:100mb" in message and "104.9 MB" in message, message
    assert "free at /root/.ollama in the ollama container" in message, message
    assert used_bytes(models_stack) - before <= 4 * MIB
    assert "huge:100mb" not in names(models_stack)


# --- bad input --------------------------------------------------------------------------


def test_an_unknown_model_is_one_line_with_ollamas_reason(models_stack: StackHome) -> None:
    result = models_stack.cli("models", "pull", "missing-model")
    assert result.code == 1
    assert "file does not exist" in one_error(result)


def test_a_name_no_model_can_have_is_a_usage_error(models_stack: StackHome) -> None:
    for bad in ("bad name", "../etc:latest", "x@y", "a;rm"):
        result = models_stack.cli("models", "pull", bad)
        assert result.code == 2, (bad, result.stderr)
        assert "is not a model name" in one_error(result)


def test_rm_needs_yes_without_a_terminal_and_lists_the_installed_for_an_unknown_name(
    models_stack: StackHome,
) -> None:
    models_stack.cli("models", "pull", "gone:2mb")
    assert models_stack.cli("models", "rm", "gone:2mb").code == 2
    assert "gone:2mb" in names(models_stack)

    unknown = models_stack.cli("models", "rm", "never-installed", "--yes")
    assert unknown.code == 1
    line = one_error(unknown)
    assert "never-installed" in line and "stand-in:latest" in line and "gone:2mb" in line

    removed = models_stack.cli("models", "rm", "gone:2mb", "--yes", "--json")
    assert removed.code == 0, removed.stderr
    assert removed.json() == {"removed": ["gone:2mb"]}
    assert "gone:2mb" not in names(models_stack)


def test_rm_at_a_terminal_asks_first(models_stack: StackHome) -> None:
    models_stack.cli("models", "pull", "asked:2mb")
    result = run_tty(models_stack, "models", "rm", "asked:2mb", answers=[("Remove asked:2mb?", "y\n")])
    assert result.code == 0, result.stdout
    assert "Removed asked:2mb." in result.stdout
    assert "asked:2mb" not in names(models_stack)


def test_ctrl_c_during_a_pull_exits_130_and_cleans_up_the_bar(models_stack: StackHome) -> None:
    result = run_tty(models_stack, "models", "pull", "slow:24mb", interrupt_on="MB")

    text = result.stdout
    assert result.code == 130, text
    assert "Interrupted" in text and "Traceback" not in text
    assert "\x1b[?25h" in text.split("Interrupted")[0]  # the bar stopped and gave the cursor back
    assert "slow:24mb" not in names(models_stack)


# --- update ---------------------------------------------------------------------------


def test_update_reports_changed_and_current_and_one_failure_does_not_stop_the_others(
    models_stack: StackHome,
) -> None:
    # A model whose registry no longer has it: its re-pull fails, the others go on.
    ollama_exec(
        models_stack,
        "cd /root/.ollama/models/manifests/registry.ollama.ai/library && "
        "mkdir -p missing-upstream && cp stand-in/latest missing-upstream/latest",
    )
    before = {m["name"]: m["digest"] for m in models_stack.cli("models", "list", "--json").json()["models"]}

    result = models_stack.cli("models", "update", "--json")

    assert result.code == 1
    error = result.json()["error"]
    assert error["code"] == "update_failed" and "missing-upstream:latest" in error["message"]
    assert "file does not exist" in result.stderr
    after = {m["name"]: m["digest"] for m in models_stack.cli("models", "list", "--json").json()["models"]}
    # The stand-in's own model was 1 MiB; its registry now serves 16 MiB: a new digest.
    assert after["stand-in:latest"] != before["stand-in:latest"]
    assert after["piped:20mb"] == before["piped:20mb"]

    ollama_exec(models_stack, "rm -r /root/.ollama/models/manifests/registry.ollama.ai/library/missing-upstream")
    again = models_stack.cli("models", "update")
    assert again.code == 0, again.stderr
    assert f"stand-in:latest: already current ({after['stand-in:latest']})" in again.stdout
    assert "piped:20mb: already current" in again.stdout


# --- Ctrl-C, a stopped stack, --force (last: it fills the tmpfs) ---------------------


def test_force_skips_the_check_and_ollama_reports_the_full_disk(models_stack: StackHome) -> None:
    result = models_stack.cli("models", "pull", "forced:100mb", "--force")
    assert result.code == 1
    assert "No space left on device" in one_error(result)


def test_a_stopped_stack_says_start_it_first(models_stack: StackHome) -> None:
    assert models_stack.cli("stop").code == 0
    for args in (("models", "list"), ("models", "pull", "x:2mb"), ("models", "rm", "x", "--yes"), ("models", "ps")):
        result = models_stack.cli(*args)
        assert result.code == 3, (args, result.stderr)
        assert "start it first" in one_error(result) + result.stderr.lower(), result.stderr


# --- apple: the host's native Ollama ---------------------------------------------------


@pytest.fixture
def host_ollama(tmp_path: Path) -> Iterator[tuple[int, Path, subprocess.Popen[bytes]]]:
    """The stand-in run on the host, as the native Ollama app would be on a Mac."""
    [port] = free_ports(1)
    models = tmp_path / "host-models"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "tests/images/real/ollama-api/server.py"), "--host", "127.0.0.1",
         "--port", str(port), "--models", str(models)],
        env={**os.environ, "STANDIN_QUIET": "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None and b"listening" in proc.stdout.readline()
    yield port, models, proc
    proc.terminate()
    proc.wait(timeout=10)


def test_apple_uses_the_hosts_native_ollama(
    stack_home: StackHome, host_ollama: tuple[int, Path, subprocess.Popen[bytes]]
) -> None:
    port, models, server = host_ollama
    stack_home.extra_env.update({"OLLAMA_HOST": f"127.0.0.1:{port}", "OLLAMA_MODELS": str(models)})
    assert stack_home.cli("start", "--platform", "apple", "--timeout", "60").code == 0

    pulled = stack_home.cli("models", "pull", "native:3mb")

    assert pulled.code == 0, pulled.stderr
    assert any(p.stat().st_size == 3 * MIB for p in (models / "blobs").iterdir())
    assert "native:3mb" in names(stack_home)
    assert stack_home.cli("models", "rm", "native:3mb", "--yes").code == 0
    assert names(stack_home) == ["stand-in:latest"]

    server.terminate()
    server.wait(timeout=10)
    down = stack_home.cli("models", "list")
    assert down.code == 1
    assert f"Ollama does not answer at http://127.0.0.1:{port}" in one_error(down)
