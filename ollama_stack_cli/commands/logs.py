"""`logs [TARGET]`: the core, one service, or one extension, through `docker compose logs`."""

from __future__ import annotations

import re

from .. import stack
from ..errors import ExitCode, StackError


def run(ctx: stack.Context, target: str | None, follow: bool, tail: str, since: str | None) -> int:
    args = ["logs", "--tail", tail]
    if follow:
        args.append("--follow")
    if since:
        args += ["--since", since]
    return stack.stream_logs(ctx, target, args)


# What `docker logs --since` accepts: a duration (10m, 1h30m, 1.5h), a Unix time, or an
# RFC 3339 date or date-time, optionally with a zone.
_SINCE = re.compile(
    r"^(?:(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+"
    r"|\d+(?:\.\d+)?"
    r"|\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:\d{2})?)$"
)


def validate_since(value: str | None) -> str | None:
    if value is not None and not _SINCE.match(value):
        raise StackError(
            f"Invalid --since {value!r}.",
            "Use a duration like 10m or 1h30m, or a time like 2026-01-02T13:00:00.",
            code=ExitCode.USAGE,
            slug="usage",
        )
    return value


def validate_tail(value: str) -> str:
    if value != "all" and not (value.isdigit()):
        raise StackError(f"Invalid --tail {value!r}.", "Use a number of lines or 'all'.", code=ExitCode.USAGE)
    return value
