"""Machine line, result rows and their text / Markdown rendering for `run.py`."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import REPO, Group

Row = dict[str, Any]  # JSON-ready: what --json prints and --load reads back


def rows(groups: list[Group], samples: dict[str, list[float]]) -> list[Row]:
    """One row per comparison of a measured command (or one bare row); the verdict is the ratio of medians."""
    out: list[Row] = []
    labels = {c.key: c.label for g in groups for c in g.cmds}
    for group, c in ((g.name, c) for g in groups for c in g.cmds):
        key, vs, role = c.key, c.vs, c.role
        if not samples.get(key):
            continue
        s = samples[key]
        base = {"key": key, "command": c.label, "group": group, "role": role, "runs": len(s)}
        base |= {"median_ms": round(statistics.median(s), 1), "min_ms": round(min(s), 1), "samples_ms": s}
        compared = [(other, goal) for other, goal in vs if samples.get(other)]
        for other, goal in compared:
            ratio = statistics.median(s) / statistics.median(samples[other])
            result = role if goal is None else ("PASS" if ratio <= goal else "FAIL")
            out.append(base | {"vs": other, "vs_command": labels[other], "ratio": round(ratio, 3), "goal": goal,
                               "min_ratio": round(min(s) / min(samples[other]), 3), "result": result})  # fmt: skip
        if not compared:
            out.append(base | {"vs": None, "vs_command": "", "ratio": None, "goal": None, "min_ratio": None})
            out[-1]["result"] = role
    return out


def machine() -> dict[str, Any]:
    def first(path: str, prefixes: tuple[str, ...]) -> str | None:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            return None
        return next((line.split(":", 1)[1].strip() for line in lines if line.lower().startswith(prefixes)), None)

    def out(*argv: str) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    mem = first("/proc/meminfo", ("memtotal",))
    packages: dict[str, str | None] = {}
    for dist in ("ollama-stack", "typer", "docker", "pydantic", "rich"):
        try:
            packages[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            packages[dist] = None
    commit = out("git", "-C", str(REPO), "rev-parse", "--short", "HEAD")
    dirty = out("git", "-C", str(REPO), "status", "--porcelain", "--", "ollama_stack_cli")
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu_model": first("/proc/cpuinfo", ("model name", "hardware", "cpu model")) or platform.processor(),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory": f"{int(mem.split()[0]) / 1024**2:.1f} GiB" if mem else "unknown",
        "kernel": f"{platform.system()} {platform.release()}",
        "docker_server": out("docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"),
        "docker_compose": out("docker", "compose", "version", "--short"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": packages,
        "commit": commit + ("-dirty" if dirty else ""),
        "loadavg": loadavg(),
        "loadavg_end": None,
    }


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def machine_line(m: dict[str, Any]) -> str:
    pk = m["packages"]
    return (
        f"{m['cpu_model']}, {m['nproc']} CPUs ({m['cpus_usable']} usable), {m['memory']}; {m['kernel']}; "
        f"Docker {m['docker_server']}, compose {m['docker_compose']}; {m['python']}; "
        f"typer {pk['typer']}, docker SDK {pk['docker']}, pydantic {pk['pydantic']}, rich {pk['rich']}; "
        f"ollama-stack {pk['ollama-stack']} @ {m['commit']}; load {m['loadavg']} at start"
        + (f", {m['loadavg_end']} at end" if m.get("loadavg_end") else "")
        + f"; {m['date']}"
    )


def fmt_ratio(value: float | None, goal: float | None = None) -> str:
    if value is None:
        return ""
    if goal is not None and (round(value, 2) <= goal) != (value <= goal):
        return f"{value:.3f}x"  # two decimals would hide which side of the goal it is
    return f"{value:.2f}x"


def summary(rs: list[Row]) -> str:
    goals = [r for r in rs if r["goal"] is not None]
    failed = [
        f"{r['command']} {fmt_ratio(r['ratio'], r['goal'])}".replace("`", "") for r in goals if r["result"] == "FAIL"
    ]
    return f"Goals: {len(goals) - len(failed)}/{len(goals)} PASS" + (f" (FAIL: {'; '.join(failed)})" if failed else "")


def render(rs: list[Row], m: dict[str, Any], settings: dict[str, Any], markdown: bool) -> str:
    head = ["Command", "Runs", "Median (ms)", "Min (ms)", "Compared with", "Ratio", "Goal", "Result", "Min ratio"]
    cells = [
        [r["command"], str(r["runs"]), f"{r['median_ms']:.0f}", f"{r['min_ms']:.0f}", r["vs_command"] or "",
         fmt_ratio(r["ratio"], r["goal"]), "" if r["goal"] is None else f"<= {r['goal']}x", r["result"],
         fmt_ratio(r["min_ratio"])]
        for r in rs
    ]  # fmt: skip
    intro = [
        f"Machine: {machine_line(m)}.",
        "",
        f"{settings['runs']} runs per fast command, {settings['start_runs']} per start, interleaved after one "
        "warm-up round; wall-clock from spawn to exit.",
        "",
    ]
    if markdown:
        for c in cells:
            c[6] = c[6].replace("<=", "≤")
            c[7] = f"**{c[7]}**" if c[7] in ("PASS", "FAIL") else c[7]
        lines = ["| " + " | ".join(head) + " |", "|---|--:|--:|--:|---|--:|---|---|--:|"]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(intro + lines + ["", summary(rs)])
    plain = [[c.replace("`", "") for c in row] for row in [head, *cells]]
    widths = [max(len(row[i]) for row in plain) for i in range(len(head))]
    numeric = {1, 2, 3, 5, 8}
    lines = []
    for n, row in enumerate(plain):
        if n > 1 and rs[n - 1]["group"] != rs[n - 2]["group"]:
            lines.append("")
        padded = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(intro + lines + ["", summary(rs)])
