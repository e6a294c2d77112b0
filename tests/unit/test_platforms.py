"""Platform decision: a fake nvidia-smi on PATH and a controlled OS/arch."""

from __future__ import annotations

from pathlib import Path

import pytest

from ollama_stack_cli import platforms
from ollama_stack_cli.platforms import Evidence, decide, gather_evidence


def fake_nvidia_smi(tmp_path: Path, output: str, code: int = 0) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{output}'\nexit {code}\n")
    script.chmod(0o755)
    return bin_dir


@pytest.fixture
def linux(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(platforms, "_os_and_arch", lambda: ("Linux", "x86_64"))
    monkeypatch.setattr(platforms, "CDI_GLOBS", ())


def test_gpu_with_nvidia_runtime_is_nvidia(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linux: None) -> None:
    bin_dir = fake_nvidia_smi(tmp_path, "GPU 0: NVIDIA RTX 4090 (UUID: GPU-1)")
    monkeypatch.setenv("PATH", str(bin_dir))

    decision = decide(gather_evidence(lambda: ["nvidia", "runc"]))

    assert decision.platform == "nvidia" and not decision.warnings
    assert any("RTX 4090" in line for line in decision.evidence)


def test_gpu_engine_cannot_use_falls_back_to_cpu_with_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linux: None
) -> None:
    monkeypatch.setenv("PATH", str(fake_nvidia_smi(tmp_path, "GPU 0: Tesla T4 (UUID: GPU-2)")))

    decision = decide(gather_evidence(lambda: ["runc"]))

    assert decision.platform == "cpu"
    assert "NVIDIA Container Toolkit" in decision.warnings[0]


def test_toolkit_only_install_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linux: None) -> None:
    bin_dir = fake_nvidia_smi(tmp_path, "GPU 0: Tesla T4 (UUID: GPU-2)")
    (bin_dir / "nvidia-ctk").write_text("#!/bin/sh\n")
    (bin_dir / "nvidia-ctk").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))

    assert decide(gather_evidence(lambda: ["runc"])).platform == "nvidia"


def test_failing_nvidia_smi_means_no_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linux: None) -> None:
    monkeypatch.setenv("PATH", str(fake_nvidia_smi(tmp_path, "NVIDIA-SMI has failed", code=9)))
    asked = []

    decision = decide(gather_evidence(lambda: asked.append(1) or ["nvidia"]))

    assert decision.platform == "cpu" and not decision.warnings and not asked


def test_apple_silicon(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(platforms, "_os_and_arch", lambda: ("Darwin", "arm64"))
    monkeypatch.setenv("PATH", str(tmp_path))

    assert decide(gather_evidence(lambda: [])).platform == "apple"


def test_intel_mac_is_cpu() -> None:
    assert decide(Evidence(system="Darwin", machine="x86_64")).platform == "cpu"


def test_flag_wins_and_warns_when_it_cannot_work() -> None:
    decision = decide(Evidence(system="Linux", machine="x86_64"), forced="nvidia")
    assert decision.platform == "nvidia" and decision.source == "flag"
    assert "no NVIDIA GPU" in decision.warnings[0]
    assert decide(Evidence(system="Linux", machine="x86_64"), forced="cpu").warnings == []
