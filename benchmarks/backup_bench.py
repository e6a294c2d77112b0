"""Backup and restore of a 1 GiB Open WebUI data volume against their floors (SPEC 9), in one run.

Floors: `docker run --rm -v VOLUME:/d IMAGE tar -C /d -cf - . > FILE` for backup, and
`tar -xf` of that file into a fresh volume for restore, with the same (stub) image.
Ours: `ollama-stack backup --output FILE` of a stopped stack, and `restore FILE` into a
home whose volumes were removed. Runs alternate; medians are reported with the CLI's
peak memory (ru_maxrss of the process, from wait4).

    .venv/bin/python benchmarks/backup_bench.py [--size-mib 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

STUB = "ollama-stack-test/stub:latest"
CLI = [str(Path(sys.executable).parent / "ollama-stack")]


def timed(argv: list[str], stdin: Path | None = None, stdout: Path | None = None) -> tuple[float, int]:
    """Seconds from spawn to exit, and peak RSS in MB, of one process."""
    fin = stdin.open("rb") if stdin else subprocess.DEVNULL
    fout = stdout.open("wb") if stdout else subprocess.DEVNULL
    try:
        began = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - began
    finally:
        for handle in (fin, fout):
            if hasattr(handle, "close"):
                handle.close()  # type: ignore[union-attr]
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss // 1024


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    project = f"osbench-{uuid.uuid4().hex[:8]}"
    root = Path(tempfile.mkdtemp(prefix="osbench-"))
    home = root / "home"
    home.mkdir()
    (home / ".env").write_text(
        f"PROJECT_NAME={project}\nOLLAMA_IMAGE={STUB}\nWEBUI_IMAGE={STUB}\nMCP_PROXY_IMAGE={STUB}\n"
        "OLLAMA_PORT=40001\nWEBUI_PORT=40002\nMCP_PROXY_PORT=40003\n"
    )
    volume, fresh = f"{project}_open_webui_data", f"{project}-floor-restore"
    label = f"ollama-stack.installation={project}"
    cli = [*CLI, "--home", str(home)]
    try:
        docker("volume", "create", "--label", label, volume)
        files = max(1, options.size_mib // 16)
        fill = f"for i in $(seq 1 {files}); do head -c 16777216 /dev/urandom > /d/f$i; done; mkdir -p /d/uploads"
        docker("run", "--rm", "--entrypoint", "sh", "-v", f"{volume}:/d", STUB, "-c", fill)
        results: dict[str, list[float]] = {"backup_floor": [], "backup": [], "restore_floor": [], "restore": []}
        memory: list[int] = []
        floor_file, our_file = root / "floor.tar", root / "ours.tar"
        for _ in range(options.rounds):
            floor = [
                "docker",
                "run",
                "--rm",
                "--entrypoint",
                "tar",
                "-v",
                f"{volume}:/d",
                STUB,
                "-C",
                "/d",
                "-cf",
                "-",
                ".",
            ]
            results["backup_floor"].append(timed(floor, stdout=floor_file)[0])
            seconds, peak = timed([*cli, "backup", "--output", str(our_file)])
            results["backup"].append(seconds)
            memory.append(peak)
            docker("volume", "create", "--label", label, fresh)
            floor = [
                "docker",
                "run",
                "--rm",
                "-i",
                "--entrypoint",
                "tar",
                "-v",
                f"{fresh}:/d",
                STUB,
                "-C",
                "/d",
                "-xf",
                "-",
            ]
            results["restore_floor"].append(timed(floor, stdin=floor_file)[0])
            docker("volume", "rm", fresh)
            docker("volume", "rm", volume)  # restore into a home whose volume is gone, like the floor
            seconds, peak = timed([*cli, "restore", str(our_file), "--yes"])
            results["restore"].append(seconds)
            memory.append(peak)
        medians = {name: statistics.median(values) for name, values in results.items()}
        report = {
            "size_mib": options.size_mib,
            "rounds": options.rounds,
            "seconds": {k: round(v, 2) for k, v in medians.items()},
            "backup_ratio": round(medians["backup"] / medians["backup_floor"], 2),
            "restore_ratio": round(medians["restore"] / medians["restore_floor"], 2),
            "cli_peak_mb": max(memory),
            "archive_mb": round(our_file.stat().st_size / 1e6, 1),
        }
        print(json.dumps(report, indent=2))
    finally:
        listed = subprocess.run(
            ["docker", "volume", "ls", "-q", "--filter", f"label={label}"], capture_output=True, text=True
        ).stdout.split()
        for name in listed:
            subprocess.run(["docker", "volume", "rm", "-f", name], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
