"""The ``fennec`` command line. Thin: parse arguments, call the library, render the result.

Each verb group lives in its own module and registers itself on :data:`app`. Results go to stdout (table,
CSV or JSON); logs go to stderr. A :class:`~fennec.errors.FennecError` (or a missing file) ends the run with
one line on stderr and exit code 1; ``-v`` adds the traceback. Ctrl-C (SIGINT) ends any verb with
``interrupted`` and exit code 130; command-line usage errors exit 2.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import traceback

import typer

from fennec.errors import FennecError

# typer >= 0.2x vendors click (typer._click) and raises its own exception classes; older typer raises
# click's. Catch both, so usage errors exit 2 with a usage message instead of a traceback.
_EXIT: tuple[type[BaseException], ...] = (typer.Exit,)
_ABORT: tuple[type[BaseException], ...] = (typer.Abort,)
_USAGE: tuple[type[BaseException], ...] = (typer.TyperException,) if hasattr(typer, "TyperException") else ()
try:
    import click
except ImportError:  # pragma: no cover
    pass
else:
    _EXIT += (click.exceptions.Exit,)
    _ABORT += (click.exceptions.Abort,)
    _USAGE += (click.ClickException,)

app = typer.Typer(
    name="fennec",
    help="Recommend which pre-trained model to fine-tune for a new image task.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STATE = {"verbose": 0}


@app.callback()
def _root(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="-v: INFO logs and tracebacks; -vv: DEBUG."
    ),
) -> None:
    """Fennec: rank pre-trained models for a new task before fine-tuning any of them."""
    _STATE["verbose"] = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("fennec").setLevel(level)
    logging.getLogger("archi2vec").setLevel(level)


def _register() -> None:
    # Verb modules register their commands on `app` at import time.
    from fennec.cli import _core, _evaluate  # noqa: F401

    for optional in ("_score", "_proxy", "_archi2vec", "_btune", "_bench", "_campaign"):
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
    _register()
    try:
        rv = app(args=args, prog_name="fennec", standalone_mode=False)
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _ABORT as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            return 130
        print("Aborted.", file=sys.stderr)
        return 1
    except _USAGE as exc:
        exc.show()
        return int(getattr(exc, "exit_code", 2))
    except (FennecError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        if _STATE["verbose"]:
            traceback.print_exc()
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    # typer turns Ctrl-C into Exit(130) and, outside standalone mode, returns an Exit's code
    return rv if isinstance(rv, int) and not isinstance(rv, bool) else 0


def _one_line(exc: BaseException) -> str:
    text = str(exc) if not isinstance(exc, OSError) or not exc.filename else f"{exc.strerror}: {exc.filename}"
    return " ".join(text.split())


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
