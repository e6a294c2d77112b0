"""Which compose overlay fits this machine, and why.

Split in two so the rule is testable without hardware: `gather_evidence` looks at
the machine (nvidia-smi, CDI specs, toolkit binaries, AMD's /dev/kfd and render
nodes, the engine's runtimes), and `decide` is a pure function of what was found.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

from .schemas import Evidence, Platform, PlatformDecision

CDI_GLOBS = ("/etc/cdi/*.yaml", "/etc/cdi/*.json", "/var/run/cdi/*.yaml", "/var/run/cdi/*.json")
TOOLKIT_BINARIES = ("nvidia-ctk", "nvidia-container-runtime-hook", "nvidia-container-toolkit")
# AMD: ROCm needs the kernel driver's compute node and a GPU render node (SPEC 14).
KFD_PATH = "/dev/kfd"
RENDER_GLOB = "/dev/dri/renderD*"
NVIDIA_QUERY = "--query-gpu=name,memory.total,driver_version"
TOOLKIT_FIX = (
    "Install the NVIDIA Container Toolkit and run `sudo nvidia-ctk runtime configure --runtime=docker` "
    "then restart Docker, or pass --platform cpu to silence this."
)


def decide(evidence: Evidence, forced: Platform | None = None) -> PlatformDecision:
    """Apply SPEC 4: apple on Darwin/arm64; nvidia when a GPU and a way to use it; else cpu."""
    notes: list[str] = [f"os: {evidence.system}/{evidence.machine}"]
    if not evidence.engine_local:
        notes.append("the engine is on another machine: only its runtimes are visible from here")
    elif evidence.gpus:
        notes.append(f"nvidia-smi: {len(evidence.gpus)} GPU(s): {'; '.join(evidence.gpus)}")
        notes.extend(f"GPU: {detail}" for detail in evidence.gpu_details)
    else:
        notes.append("nvidia-smi: no NVIDIA GPU found")
    if evidence.amd_devices:
        notes.append(f"AMD ROCm devices: {', '.join(evidence.amd_devices)}")
    engine_paths = []
    if "nvidia" in (evidence.engine_runtimes or []):
        engine_paths.append("engine lists the nvidia runtime")
    if evidence.cdi_specs:
        engine_paths.append(f"CDI specs: {', '.join(evidence.cdi_specs)}")
    if evidence.toolkit:
        engine_paths.append(f"NVIDIA container toolkit: {', '.join(evidence.toolkit)}")
    notes.extend(engine_paths)
    is_apple = evidence.system == "Darwin" and evidence.machine in ("arm64", "aarch64")

    unasked = evidence.engine_runtimes is None  # the engine could not be asked
    if forced is not None:
        warnings = []
        if forced == "nvidia" and not (evidence.gpus and engine_paths):
            if not evidence.gpus and evidence.engine_local:
                why = "no NVIDIA GPU was found"
            elif unasked:
                why = "the Docker engine could not be asked whether it can use the GPU"
            else:
                why = "the Docker engine shows no way to use an NVIDIA GPU"
            warnings.append(f"--platform nvidia was given but {why}; starting Ollama may fail. {TOOLKIT_FIX}")
        if forced == "rocm" and not evidence.amd_devices:
            where = "on this machine" if evidence.engine_local else "visible from here (the engine is remote)"
            warnings.append(f"--platform rocm was given but no {KFD_PATH} and {RENDER_GLOB} are {where}.")
        if forced == "apple" and not is_apple:
            warnings.append("--platform apple expects the native Ollama app on this host's port 11434.")
        return PlatformDecision(platform=forced, source="flag", evidence=notes, warnings=warnings)

    if is_apple:
        notes.append("Apple Silicon: Ollama runs natively on the host (Docker has no GPU here)")
        return PlatformDecision(platform="apple", source="detected", evidence=notes)
    if (evidence.gpus or not evidence.engine_local) and engine_paths:
        return PlatformDecision(platform="nvidia", source="detected", evidence=notes)
    if evidence.amd_devices and evidence.engine_local:
        return PlatformDecision(platform="rocm", source="detected", evidence=notes)
    warnings = []
    if evidence.gpus and unasked:
        warnings.append(
            "An NVIDIA GPU was found, but the Docker engine could not be asked whether it can use it "
            "(it is not reachable); using cpu. Start the engine and run `ollama-stack check` again."
        )
    elif evidence.gpus:
        warnings.append(f"An NVIDIA GPU was found but the Docker engine cannot use it; using cpu. {TOOLKIT_FIX}")
    return PlatformDecision(platform="cpu", source="detected", evidence=notes, warnings=warnings)


def gather_evidence(engine_runtimes: Callable[[], list[str]] | None, *, engine_local: bool = True) -> Evidence:
    """Look at the machine. `engine_runtimes` (None: the engine cannot be asked) is asked when a GPU is present.

    A remote engine's GPUs are not this machine's: only its runtimes are looked at.
    """
    import glob

    if not engine_local:
        system, machine = _os_and_arch()
        asked = engine_runtimes() if engine_runtimes else None
        return Evidence(system=system, machine=machine, engine_local=False, engine_runtimes=asked)
    gpus = _nvidia_gpus()
    runtimes: list[str] | None = []
    cdi: list[str] = []
    toolkit: list[str] = []
    details: list[str] = []
    if gpus:
        runtimes = engine_runtimes() if engine_runtimes else None
        cdi = sorted(path for pattern in CDI_GLOBS for path in glob.glob(pattern))
        toolkit = [name for name in TOOLKIT_BINARIES if shutil.which(name)]
        details = _nvidia_details()
    system, machine = _os_and_arch()
    return Evidence(
        system=system,
        machine=machine,
        gpus=gpus,
        gpu_details=details,
        engine_runtimes=runtimes,
        cdi_specs=cdi,
        toolkit=toolkit,
        amd_devices=amd_devices(),
    )


def amd_devices(kfd: str | None = None, render_glob: str | None = None) -> list[str]:
    """`/dev/kfd` and the first render node when both exist (what ROCm in a container needs), else []."""
    import glob

    kfd = kfd or KFD_PATH
    nodes = sorted(glob.glob(render_glob or RENDER_GLOB))
    if not os.path.exists(kfd) or not nodes:
        return []
    return [kfd, *nodes]


def _os_and_arch() -> tuple[str, str]:
    """os.uname is what platform.system/machine read, without importing `platform` (~4 ms)."""
    import os
    import sys

    if sys.platform == "win32":
        import platform

        return platform.system(), platform.machine()
    uname = os.uname()
    return uname.sysname, uname.machine


def _nvidia_smi(*args: str) -> str | None:
    """nvidia-smi's output, or None when it is missing or fails (no driver, no GPU)."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        result = subprocess.run([binary, *args], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def _nvidia_gpus() -> list[str]:
    output = _nvidia_smi("-L") or ""
    return [line.strip() for line in output.splitlines() if line.strip().startswith("GPU")]


def _nvidia_details() -> list[str]:
    """Name, memory and driver per GPU, from `nvidia-smi --query-gpu=... --format=csv`."""
    return parse_gpu_query(_nvidia_smi(NVIDIA_QUERY, "--format=csv") or "")


def parse_gpu_query(csv_text: str) -> list[str]:
    """`NVIDIA H100 80GB HBM3, 81559 MiB, 580.159.04` -> `NVIDIA H100 80GB HBM3, 81559 MiB, driver 580.159.04`.

    Columns are matched by the header's names, so extra columns (used memory, uuid) are ignored.
    """
    import csv

    rows = [[cell.strip() for cell in row] for row in csv.reader(csv_text.splitlines()) if row]
    if not rows:
        return []
    header = [name.split(" [")[0] for name in rows[0]]
    if "name" not in header:
        return []
    found = []
    for row in rows[1:]:
        cells = dict(zip(header, row, strict=False))
        parts = [cells.get("name", "?")]
        if cells.get("memory.total"):
            parts.append(cells["memory.total"])
        if cells.get("driver_version"):
            parts.append(f"driver {cells['driver_version']}")
        found.append(", ".join(parts))
    return found
