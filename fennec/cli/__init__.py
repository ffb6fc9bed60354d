"""The ``fennec`` command line. Thin: parse arguments, call the library, render the result.

Each verb group lives in its own module and registers itself on :data:`app`; a run imports only the module of
its verb (all of them for ``--help`` or an unknown verb), and the verb modules import their libraries inside
the verbs, so ``fennec query`` never loads torch. Results go to stdout (table, CSV or JSON); logs go to
stderr. A :class:`~fennec.errors.FennecError` (or a missing file) ends the run with one line on stderr and
exit code 1; so does any other exception, named by its type (an internal error); ``-v`` (before or after the
verb) adds the traceback. Ctrl-C (SIGINT) ends any verb with ``interrupted`` and exit code 130; command-line
usage errors exit 2. The console script ends the process without the interpreter's teardown.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import traceback

import typer

from archi2vec.console import (
    ABORT,
    EXIT,
    HELP_WIDTH,
    USAGE,
    error_line,
    exit_now,
    hoist_verbose,
    widen_help,
)
from fennec.errors import FennecError

app = typer.Typer(
    name="fennec",
    help="Recommend which pre-trained model to fine-tune for a new image task.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": HELP_WIDTH},
)

_STATE = {"verbose": 0}

# verb -> the module that registers it; a verb not listed here (a new module) is found by importing them all
_VERB_MODULES = {
    "fit": "_core", "query": "_core", "info": "_core", "histories": "_core", "version": "_core",
    "evaluate": "_evaluate", "score": "_score", "embed-tasks": "_proxy", "btune": "_btune", "history": "_btune",
    "export-benchmark": "_bench", "plot": "_bench", "campaign": "_campaign",
}
_OPTIONAL = ("_score", "_proxy", "_archi2vec", "_btune", "_bench", "_campaign")


def _show_version(value: bool) -> None:
    if value:
        from fennec import __version__

        typer.echo(f"fennec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="-v: INFO logs and tracebacks; -vv: DEBUG (also after the verb)."
    ),
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_show_version, help="Print Fennec's version and exit."
    ),
) -> None:
    """Fennec: rank pre-trained models for a new task before fine-tuning any of them."""
    _STATE["verbose"] = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("fennec").setLevel(level)
    logging.getLogger("archi2vec").setLevel(level)


def _register(args: list[str] | None = None) -> None:
    """Import the verb module of ``args`` (every verb module when ``args`` names no known verb)."""
    verb = next((a for a in args or () if not a.startswith("-")), None)
    if verb in _VERB_MODULES:
        __import__(f"fennec.cli.{_VERB_MODULES[verb]}")
        return
    from fennec.cli import _core, _evaluate  # noqa: F401

    for optional in _OPTIONAL:
        try:
            __import__(f"fennec.cli.{optional}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fennec.cli.{optional}":
                raise


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fennec`` script; returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    _STATE["verbose"] = 0  # set by the root callback once the options are parsed
    restore = None
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C must interrupt even where the caller ignored SIGINT (a background job of a script)
        restore = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = _dispatch(args)
    except KeyboardInterrupt:
        code = 130
    finally:
        if restore is not None:
            signal.signal(signal.SIGINT, restore)
    if code == 130:
        print("interrupted", file=sys.stderr)
    return code


def _dispatch(args: list[str]) -> int:
    _register(args)
    import typer.main

    command = typer.main.get_command(app)
    args = hoist_verbose(command, args)
    widen_help(args)
    try:
        rv = command.main(args=args, prog_name="fennec", standalone_mode=False)
    except EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except ABORT as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            return 130
        print("Aborted.", file=sys.stderr)
        return 1
    except USAGE as exc:
        exc.show()
        return int(getattr(exc, "exit_code", 2))
    except BrokenPipeError:  # stdout closed early (`fennec query ... | head -1`): nothing more to say
        return 1
    except Exception as exc:
        internal = not isinstance(exc, (FennecError, FileNotFoundError, NotADirectoryError, IsADirectoryError,
                                        PermissionError))
        if _STATE["verbose"]:
            traceback.print_exc()
        print(error_line(exc, internal=internal, verbose=bool(_STATE["verbose"])), file=sys.stderr)
        return 1
    # typer turns Ctrl-C into Exit(130) and, outside standalone mode, returns an Exit's code
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def run() -> None:  # pragma: no cover - console script shim
    """The ``fennec`` console script: :func:`main`, then the process ends without the interpreter's teardown."""
    exit_now(main())
