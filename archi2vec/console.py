"""Command-line plumbing shared by the ``archi2vec`` and ``fennec`` commands (no heavy import here).

- :data:`EXIT`, :data:`ABORT`, :data:`USAGE`: the exception classes typer raises (typer >= 0.2x vendors
  click as ``typer._click``; older typer raises click's own), so usage errors exit 2 with a usage message.
- :func:`hoist_verbose`: ``-v``/``--verbose`` given after the verb counts as given before it.
- :func:`widen_help`: help pages use up to :data:`HELP_WIDTH` columns when stdout is not a terminal (rich
  and click would otherwise wrap them at 80 columns).
- :func:`error_line`: the one ``error: ...`` line of a failed run.
- :func:`exit_now`: the console-script shim's exit: flush, run the ``atexit`` handlers, then ``os._exit``,
  skipping the interpreter's teardown of every imported module (a quarter of a second after pandas, more
  after torch). Only console scripts call it; ``main()`` functions return their exit code.
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer

__all__ = [
    "ABORT",
    "EXIT",
    "HELP_WIDTH",
    "USAGE",
    "error_line",
    "exit_now",
    "hoist_verbose",
    "widen_help",
]

HELP_WIDTH = 120

EXIT: tuple[type[BaseException], ...] = (typer.Exit,)
ABORT: tuple[type[BaseException], ...] = (typer.Abort,)
USAGE: tuple[type[BaseException], ...] = tuple(
    c for c in (getattr(typer, "TyperException", None),) if isinstance(c, type)
)
if not USAGE:  # pragma: no cover - typer < 0.2x raises click's exception classes
    import click

    EXIT += (click.exceptions.Exit,)
    ABORT += (click.exceptions.Abort,)
    USAGE += (click.ClickException,)

_VERBOSE = re.compile(r"-v+")


def _verb_command(root: Any, args: Sequence[str]) -> tuple[Any, int] | None:
    """The (sub)command that ``args`` name and the index of its first own argument, or None."""
    i = next((k for k, a in enumerate(args) if not a.startswith("-")), None)
    cmd = getattr(root, "commands", {}).get(args[i]) if i is not None else None
    if cmd is None:
        return None
    i += 1
    while (
        hasattr(cmd, "commands") and i < len(args) and args[i] in cmd.commands
    ):  # a sub-group's verb
        cmd, i = cmd.commands[args[i]], i + 1
    return cmd, i


def hoist_verbose(root: Any, args: Sequence[str]) -> list[str]:
    """``VERB ... -v`` -> ``-v VERB ...``: move ``-v``, ``-vv``, ``--verbose`` after the verb to the front.

    ``root`` is the click group of the command line. A token that is the value of one of the verb's options
    (``--task -v``) stays, and so does everything after ``--``; a verb with a ``-v`` of its own keeps it.
    """
    found = _verb_command(root, args)
    if found is None:
        return list(args)
    cmd, start = found
    values: dict[str, int] = {}
    for p in getattr(cmd, "params", ()):
        if getattr(p, "param_type_name", "") == "option" and not (p.is_flag or p.count):
            values.update({o: max(int(p.nargs), 1) for o in p.opts})
        if "-v" in p.opts or "--verbose" in p.opts:
            return list(args)
    out, count, skip = list(args[:start]), 0, 0
    for j, tok in enumerate(args[start:], start):
        if skip:
            skip -= 1
        elif tok == "--":
            out += args[j:]
            break
        elif tok == "--verbose" or _VERBOSE.fullmatch(tok):
            count += 1 if tok == "--verbose" else len(tok) - 1
            continue
        else:
            skip = values.get(tok, 0)
        out.append(tok)
    return ["-v"] * count + out


def widen_help(args: Sequence[str]) -> None:
    """Let help pages use :data:`HELP_WIDTH` columns where stdout is not a terminal (``$COLUMNS`` and
    ``$TERMINAL_WIDTH`` win); on a terminal, its own width."""
    if not ({"-h", "--help"} & set(args) or not args) or sys.stdout.isatty():
        return
    if os.environ.get("COLUMNS") or os.environ.get("TERMINAL_WIDTH"):
        return
    try:
        from typer import rich_utils
    except (
        ImportError
    ):  # pragma: no cover - typer without rich: click's formatter, context_settings
        return
    rich_utils.MAX_WIDTH = HELP_WIDTH


def error_line(exc: BaseException, *, internal: bool = False, verbose: bool = False) -> str:
    """``error: <message>`` on one line; an ``internal`` error (not the user's input) also names its type
    and, without ``verbose``, how to see the traceback."""
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}"
    else:
        text = str(exc)
    text = " ".join(text.split())
    if not internal:
        return f"error: {text}"
    line = f"error: {type(exc).__name__}" + (f": {text}" if text else "")
    return line if verbose else f"{line} (run with -v for the traceback)"


def exit_now(code: int) -> NoReturn:
    """End the process with ``code`` now: flush stdout and stderr and the logging handlers, run the
    ``atexit`` handlers, then ``os._exit`` (no teardown of the imported modules)."""
    try:
        atexit._run_exitfuncs()  # logging.shutdown, tqdm, ray.shutdown, ... as at a normal exit
    except (
        Exception
    ):  # pragma: no cover - an atexit handler's failure must not change the exit code
        pass
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing more can be said on it
            pass
    os._exit(code)
