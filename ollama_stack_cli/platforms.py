"""Which compose overlay fits this machine, and why.

Split in two so the rule is testable without hardware: `gather_evidence` looks at
the machine (nvidia-smi, CDI specs, toolkit binaries, the engine's runtimes), and
`decide` is a pure function of what was found.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

from .schemas import Evidence, Platform, PlatformDecision

CDI_GLOBS = ("/etc/cdi/*.yaml", "/etc/cdi/*.json", "/var/run/cdi/*.yaml", "/var/run/cdi/*.json")
TOOLKIT_BINARIES = ("nvidia-ctk", "nvidia-container-runtime-hook", "nvidia-container-toolkit")
TOOLKIT_FIX = (
    "Install the NVIDIA Container Toolkit and run `sudo nvidia-ctk runtime configure --runtime=docker` "
    "then restart Docker, or pass --platform cpu to silence this."
)


def decide(evidence: Evidence, forced: Platform | None = None) -> PlatformDecision:
    """Apply SPEC 4: apple on Darwin/arm64; nvidia when a GPU and a way to use it; else cpu."""
    notes: list[str] = [f"os: {evidence.system}/{evidence.machine}"]
    if evidence.gpus:
        notes.append(f"nvidia-smi: {len(evidence.gpus)} GPU(s): {'; '.join(evidence.gpus)}")
    else:
        notes.append("nvidia-smi: no NVIDIA GPU found")
    engine_paths = []
    if "nvidia" in evidence.engine_runtimes:
        engine_paths.append("engine lists the nvidia runtime")
    if evidence.cdi_specs:
        engine_paths.append(f"CDI specs: {', '.join(evidence.cdi_specs)}")
    if evidence.toolkit:
        engine_paths.append(f"NVIDIA container toolkit: {', '.join(evidence.toolkit)}")
    notes.extend(engine_paths)
    is_apple = evidence.system == "Darwin" and evidence.machine in ("arm64", "aarch64")

    if forced is not None:
        warnings = []
        if forced == "nvidia" and not (evidence.gpus and engine_paths):
            warnings.append(
                "--platform nvidia was given but "
                + ("no NVIDIA GPU was found" if not evidence.gpus else "the Docker engine cannot use the GPU")
                + f"; starting Ollama may fail. {TOOLKIT_FIX}"
            )
        if forced == "apple" and not is_apple:
            warnings.append("--platform apple expects the native Ollama app on this host's port 11434.")
        return PlatformDecision(platform=forced, source="flag", evidence=notes, warnings=warnings)

    if is_apple:
        notes.append("Apple Silicon: Ollama runs natively on the host (Docker has no GPU here)")
        return PlatformDecision(platform="apple", source="detected", evidence=notes)
    if evidence.gpus and engine_paths:
        return PlatformDecision(platform="nvidia", source="detected", evidence=notes)
    warnings = []
    if evidence.gpus:
        warnings.append(f"An NVIDIA GPU was found but the Docker engine cannot use it; using cpu. {TOOLKIT_FIX}")
    return PlatformDecision(platform="cpu", source="detected", evidence=notes, warnings=warnings)


def gather_evidence(engine_runtimes: Callable[[], list[str]]) -> Evidence:
    """Look at the machine. `engine_runtimes` is only asked when a GPU is present."""
    import glob

    gpus = _nvidia_gpus()
    runtimes: list[str] = []
    cdi: list[str] = []
    toolkit: list[str] = []
    if gpus:
        runtimes = engine_runtimes()
        cdi = sorted(path for pattern in CDI_GLOBS for path in glob.glob(pattern))
        toolkit = [name for name in TOOLKIT_BINARIES if shutil.which(name)]
    system, machine = _os_and_arch()
    return Evidence(
        system=system,
        machine=machine,
        gpus=gpus,
        engine_runtimes=runtimes,
        cdi_specs=cdi,
        toolkit=toolkit,
    )


def _os_and_arch() -> tuple[str, str]:
    """os.uname is what platform.system/machine read, without importing `platform` (~4 ms)."""
    import os
    import sys

    if sys.platform == "win32":
        import platform

        return platform.system(), platform.machine()
    uname = os.uname()
    return uname.sysname, uname.machine


def _nvidia_gpus() -> list[str]:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    try:
        result = subprocess.run([binary, "-L"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    if result.returncode != 0:
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip().startswith("GPU")]
