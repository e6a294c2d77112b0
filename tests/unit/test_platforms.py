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


# --- CDI: the engine can use the GPU through CDI specs alone (no nvidia runtime, no toolkit on PATH) ---

REAL_CDI_GLOBS = platforms.CDI_GLOBS  # the `linux` fixture empties it
H100 = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-h100" / "nvidia-smi-L.txt"


def h100_nvidia_smi(tmp_path: Path) -> Path:
    """A fake nvidia-smi that prints what a real H100 host printed for `nvidia-smi -L`."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "nvidia-smi"
    # Shell built-ins only: PATH holds nothing but this folder.
    script.write_text(f'#!/bin/sh\n[ "$1" = -L ] || exit 2\nwhile IFS= read -r l; do echo "$l"; done < \'{H100}\'\n')
    script.chmod(0o755)
    return bin_dir


@pytest.fixture
def cdi_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, linux: None) -> tuple[Path, Path]:
    """Stand-ins for /etc/cdi and /var/run/cdi, searched with the module's own patterns."""
    etc, run = tmp_path / "etc-cdi", tmp_path / "run-cdi"
    etc.mkdir()
    run.mkdir()
    patterns = tuple(p.replace("/etc/cdi", str(etc)).replace("/var/run/cdi", str(run)) for p in REAL_CDI_GLOBS)
    monkeypatch.setattr(platforms, "CDI_GLOBS", patterns)
    return etc, run


def test_cdi_patterns_cover_both_spec_folders() -> None:
    folders = {pattern.rsplit("/", 1)[0] for pattern in REAL_CDI_GLOBS}
    assert folders == {"/etc/cdi", "/var/run/cdi"}
    assert {pattern.rsplit(".", 1)[1] for pattern in REAL_CDI_GLOBS} == {"yaml", "json"}


@pytest.mark.parametrize(("folder", "name"), [(0, "nvidia.yaml"), (1, "nvidia.json")])
def test_cdi_spec_alone_lets_the_engine_use_the_h100(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdi_dirs: tuple[Path, Path], folder: int, name: str
) -> None:
    spec = cdi_dirs[folder] / name
    spec.write_text("cdiVersion: 0.5.0\nkind: nvidia.com/gpu\n")
    monkeypatch.setenv("PATH", str(h100_nvidia_smi(tmp_path)))

    evidence = gather_evidence(lambda: ["runc", "io.containerd.runc.v2"])
    decision = decide(evidence)

    assert evidence.gpus == [H100.read_text().strip()]
    assert evidence.cdi_specs == [str(spec)] and evidence.toolkit == []
    assert decision.platform == "nvidia" and decision.source == "detected" and not decision.warnings
    assert f"CDI specs: {spec}" in decision.evidence
    assert any("NVIDIA H100 80GB HBM3" in line for line in decision.evidence)


def test_h100_without_cdi_runtime_or_toolkit_is_cpu_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdi_dirs: tuple[Path, Path]
) -> None:
    (cdi_dirs[0] / "README.txt").write_text("not a spec")  # only *.yaml / *.json count
    monkeypatch.setenv("PATH", str(h100_nvidia_smi(tmp_path)))

    decision = decide(gather_evidence(lambda: ["runc"]))

    assert decision.platform == "cpu"
    assert "cannot use it" in decision.warnings[0] and "nvidia-ctk runtime configure" in decision.warnings[0]
    assert not any(line.startswith("CDI specs") for line in decision.evidence)


def test_cdi_specs_without_a_gpu_are_not_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cdi_dirs: tuple[Path, Path]
) -> None:
    (cdi_dirs[1] / "nvidia.yaml").write_text("cdiVersion: 0.5.0\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))

    evidence = gather_evidence(lambda: ["nvidia"])

    assert evidence.gpus == [] and evidence.cdi_specs == []
    assert decide(evidence).platform == "cpu" and not decide(evidence).warnings


def test_forced_nvidia_with_only_cdi_does_not_warn() -> None:
    evidence = Evidence(system="Linux", machine="x86_64", gpus=[H100.read_text().strip()], cdi_specs=["/etc/cdi/x"])
    assert decide(evidence, forced="nvidia").warnings == []
    assert decide(evidence.model_copy(update={"cdi_specs": []}), forced="nvidia").warnings
