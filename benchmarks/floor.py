"""The floor program: the least a Typer CLI can do for `--help` and `status`.

`ollama-stack` is measured against this. It is a plain `typer.Typer()` (default
settings) with one `status` command that lists an installation's containers by
label with one Docker API call and prints them as JSON. Nothing else: no config
files, no validation, no health probes.

docker is imported inside the command, as any CLI that cares about `--help` would
do; importing it at the top would make the `--help` floor slower and the goal
easier to meet.

`start` is the SPEC 9 start floor (`docker compose up -d`, then a GET on every
endpoint each 50 ms until all answer) run inside this Typer app instead of inside
the benchmark's own process: the difference is what being a Typer program costs
before any work is done. It is an informational row; the goal stays the bare floor.

    python benchmarks/floor.py --help
    python benchmarks/floor.py status --project bench-x
    python benchmarks/floor.py start --project bench-x --env-file H/.env \\
        --file docker-compose.yml --wait PORT/api/version ...
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
def start(
    project: str = typer.Option(..., "--project", help="Compose project name."),
    env_file: str = typer.Option(..., "--env-file", help="The .env compose reads."),
    file: str = typer.Option(..., "--file", help="The compose file."),
    wait: list[str] = typer.Option(..., "--wait", help="PORT/PATH on 127.0.0.1 to poll until it answers below 400."),
) -> None:
    """`docker compose up -d`, then poll every endpoint each 50 ms until all answer."""
    import subprocess

    from probe import poll  # here, like docker above: the `--help` floor must not pay for it

    base = ["docker", "compose", "--project-name", project, "--env-file", env_file, "-f", file]
    subprocess.run([*base, "up", "-d"], check=True, capture_output=True)
    targets = [(int(port), "/" + path) for port, _, path in (w.partition("/") for w in wait)]
    if poll(targets, timeout=180.0):
        raise typer.Exit(1)
    typer.echo("ready")


if __name__ == "__main__":
    app()
