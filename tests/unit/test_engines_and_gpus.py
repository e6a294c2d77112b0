"""Engine selection (SPEC 14) and GPU detection on real nvidia-smi output and AMD device nodes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ollama_stack_cli import platforms
from ollama_stack_cli.docker_client import ENGINE_VARIABLES, Compose, resolve_endpoint
from ollama_stack_cli.errors import ExitCode, StackError
from ollama_stack_cli.platforms import amd_devices, decide, gather_evidence, parse_gpu_query
from ollama_stack_cli.schemas import EngineEndpoint, Evidence

H100 = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-h100"


def _context(config: Path, name: str, host: str, tls: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": False}
    (meta / "meta.json").write_text(json.dumps({"Name": name, "Endpoints": {"docker": endpoint}}))
    if tls:
        folder = config / "contexts" / "tls" / digest / "docker"
        folder.mkdir(parents=True)
        for file in ("ca.pem", "cert.pem", "key.pem"):
            (folder / file).write_text("x")


def test_docker_host_wins_and_carries_tls(tmp_path: Path) -> None:
    env = {
        "DOCKER_HOST": "tcp://10.0.0.5:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/c",
        "DOCKER_CONTEXT": "x",
    }
    endpoint = resolve_endpoint(env)
    assert (endpoint.source, endpoint.tls_verify, endpoint.local) == ("DOCKER_HOST", True, False)
    assert endpoint.compose_env() == {
        "DOCKER_HOST": "tcp://10.0.0.5:2376",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": "/c",
    }


def test_docker_context_then_current_context_honoring_docker_config(tmp_path: Path) -> None:
    _context(tmp_path, "gpu", "ssh://me@gpu-box:2222")
    _context(tmp_path, "secure", "tcp://192.0.2.9:2376", tls=True)
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "secure"}))

    by_variable = resolve_endpoint({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "gpu"})
    current = resolve_endpoint({"DOCKER_CONFIG": str(tmp_path)})

    assert (by_variable.source, by_variable.user, by_variable.hostname, by_variable.port) == (
        "context gpu",
        "me",
        "gpu-box",
        2222,
    )
    assert not by_variable.local and by_variable.compose_env() == {"DOCKER_HOST": "ssh://me@gpu-box:2222"}
    assert current.source == "context secure" and current.tls_verify
    assert current.compose_env()["DOCKER_CERT_PATH"].endswith("/docker")
    assert resolve_endpoint({"DOCKER_CONFIG": str(tmp_path / "none")}).host == "unix:///var/run/docker.sock"


def test_a_missing_context_is_exit_4(tmp_path: Path) -> None:
    with pytest.raises(StackError) as caught:
        resolve_endpoint({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "nope"})
    assert caught.value.code == ExitCode.DOCKER_UNAVAILABLE


def test_compose_never_inherits_another_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONTEXT", "elsewhere")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    endpoint = EngineEndpoint(host="ssh://gpu-box", source="context gpu")
    compose = Compose(["docker-compose"], "p", [], endpoint.compose_env(), Path("/tmp"))
    env = compose.process_env()
    assert env["DOCKER_HOST"] == "ssh://gpu-box"
    assert not {"DOCKER_CONTEXT", "DOCKER_TLS_VERIFY"} & set(env) and "DOCKER_HOST" in ENGINE_VARIABLES


@pytest.mark.parametrize(
    ("host", "local"),
    [("unix:///run/docker.sock", True), ("tcp://127.0.0.1:2375", True), ("ssh://localhost", True),
     ("ssh://gpu-box", False), ("tcp://192.0.2.4:2376", False)],
)  # fmt: skip
def test_which_engines_publish_on_this_machine(host: str, local: bool) -> None:
    assert EngineEndpoint(host=host, source="DOCKER_HOST").local is local


def fake_smi(tmp_path: Path) -> Path:
    """An nvidia-smi that prints the H100 machine's real output for the arguments it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        f'case "$1" in\n  -L) /bin/cat {H100 / "nvidia-smi-L.txt"} ;;\n'
        f"  --query-gpu=*) /bin/cat {H100 / 'nvidia-smi-query.csv'} ;;\n"
        f"  *) /bin/cat {H100 / 'nvidia-smi.txt'} ;;\nesac\n"
    )
    script.chmod(0o755)
    return bin_dir


@pytest.fixture
def linux(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(platforms, "_os_and_arch", lambda: ("Linux", "x86_64"))
    monkeypatch.setattr(platforms, "CDI_GLOBS", ())
    monkeypatch.setattr(platforms, "KFD_PATH", str(tmp_path / "no-kfd"))


def test_h100_is_shown_with_name_memory_and_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linux: None
) -> None:
    monkeypatch.setenv("PATH", str(fake_smi(tmp_path)))

    decision = decide(gather_evidence(lambda: ["nvidia", "runc"]))

    assert decision.platform == "nvidia"
    assert any("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-34116658" in line for line in decision.evidence)
    assert "GPU: NVIDIA H100 80GB HBM3, 81559 MiB, driver 580.159.04" in decision.evidence


def test_h100_query_parsed_by_its_header() -> None:
    text = (H100 / "nvidia-smi-query.csv").read_text()
    assert parse_gpu_query(text) == ["NVIDIA H100 80GB HBM3, 81559 MiB, driver 580.159.04"]
    assert parse_gpu_query("") == [] and parse_gpu_query("garbage\n") == []


def test_an_engine_that_cannot_be_asked_is_not_an_engine_that_cannot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linux: None
) -> None:
    monkeypatch.setenv("PATH", str(fake_smi(tmp_path)))

    unasked = decide(gather_evidence(None))
    unable = decide(gather_evidence(lambda: ["runc"]))

    assert unasked.platform == "cpu" and "could not be asked" in unasked.warnings[0]
    assert "cannot use it" not in unasked.warnings[0]
    assert "cannot use it" in unable.warnings[0]


def test_cdi_specs_in_a_folder_make_the_gpu_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linux: None
) -> None:
    monkeypatch.setenv("PATH", str(fake_smi(tmp_path)))
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    (cdi / "nvidia.yaml").write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")
    monkeypatch.setattr(platforms, "CDI_GLOBS", (str(cdi / "*.yaml"),))

    decision = decide(gather_evidence(lambda: ["runc"]))

    assert decision.platform == "nvidia" and any(str(cdi / "nvidia.yaml") in line for line in decision.evidence)


def _amd(tmp_path: Path, render: bool = True) -> tuple[str, str]:
    dev = tmp_path / "dev"
    (dev / "dri").mkdir(parents=True)
    (dev / "kfd").write_text("")
    if render:
        (dev / "dri" / "renderD128").write_text("")
    return str(dev / "kfd"), str(dev / "dri" / "renderD*")


def test_amd_devices_make_rocm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linux: None) -> None:
    kfd, render = _amd(tmp_path)
    monkeypatch.setattr(platforms, "KFD_PATH", kfd)
    monkeypatch.setattr(platforms, "RENDER_GLOB", render)
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi

    decision = decide(gather_evidence(lambda: ["runc"]))

    assert decision.platform == "rocm" and not decision.warnings
    assert any(kfd in line and "renderD128" in line for line in decision.evidence)


def test_kfd_without_a_render_node_is_not_enough(tmp_path: Path) -> None:
    kfd, render = _amd(tmp_path, render=False)
    assert amd_devices(kfd, render) == []
    assert amd_devices(str(tmp_path / "none"), render) == []


def test_rocm_forced_without_devices_warns_and_a_remote_engine_never_uses_local_devices() -> None:
    forced = decide(Evidence(system="Linux", machine="x86_64"), forced="rocm")
    assert forced.platform == "rocm" and "/dev/kfd" in forced.warnings[0]
    remote = Evidence(system="Linux", machine="x86_64", engine_local=False, amd_devices=["/dev/kfd", "/dev/dri/x"])
    assert decide(remote).platform == "cpu"
    assert decide(remote.model_copy(update={"engine_runtimes": ["nvidia"]})).platform == "nvidia"
