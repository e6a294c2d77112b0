"""The floor program: the least a Typer CLI can do for `--help` and `status`.

`ollama-stack` is measured against this. It is a plain `typer.Typer()` (default
settings) with one `status` command that lists an installation's containers by
label with one Docker API call and prints them as JSON. Nothing else: no config
files, no validation, no health probes.

docker is imported inside the command, as any CLI that cares about `--help` would
do; importing it at the top would make the `--help` floor slower and the goal
easier to meet. (The start floor is `start_floor.py`, a stdlib-only process.)

    python benchmarks/floor.py --help
    python benchmarks/floor.py status --project bench-x
    python benchmarks/floor.py tags --port 11434      (the `models list --json` floor)
"""

import json

import typer

app = typer.Typer()


@app.callback()
def main() -> None:
    """Floor program for the ollama-stack benchmarks."""


@app.command()
def status(project: str = typer.Option(..., "--project", help="Installation label value.")) -> None:
    """List the project's containers by label and print them as JSON."""
    import docker  # type: ignore[import-untyped]

    client = docker.from_env()
    items = client.api.containers(all=True, filters={"label": f"ollama-stack.installation={project}"})
    typer.echo(json.dumps(items))


@app.command()
def tags(port: int = typer.Option(..., "--port", help="Ollama's published port.")) -> None:
    """One `GET /api/tags` with the standard library, printed as JSON (the `models list` floor)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/api/tags")
    typer.echo(json.dumps(json.loads(conn.getresponse().read())))


if __name__ == "__main__":
    app()
