"""The ``archi2vec`` command line: encode architectures, query the catalogue, rebuild it.

Results go to stdout; logs and progress to stderr. An :class:`~archi2vec.errors.Archi2VecError` ends
the run with one ``error: ...`` line on stderr and exit code 1 (``-v`` adds the traceback); usage
errors exit 2. It lives outside ``__main__`` so that importing it never runs it.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

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
from archi2vec.errors import Archi2VecError

logger = logging.getLogger("archi2vec.cli")

app = typer.Typer(
    name="archi2vec",
    help="Model architecture -> computation graph -> fixed-size vector.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": HELP_WIDTH},
)

_STATE = {"verbose": 0}


def _show_version(value: bool) -> None:
    if value:
        from archi2vec import __version__

        typer.echo(f"archi2vec {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="-v: INFO logs and tracebacks; -vv: DEBUG (also after the verb).",
        ),
    ] = 0,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_show_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """archi2vec: vectors of model architectures (Weisfeiler–Lehman features of their fx graphs)."""
    _STATE["verbose"] = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("archi2vec").setLevel(level)


@app.command()
def encode(
    archs: Annotated[
        list[str],
        typer.Argument(metavar="ARCH", help="timm architecture names (arch or arch.tag)."),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write vectors to FILE.csv or FILE.npz.")
    ] = None,
    iterations: Annotated[int, typer.Option(help="Weisfeiler–Lehman iterations.")] = 3,
    n_features: Annotated[int, typer.Option("--n-features", help="Vector dimension.")] = 256,
    node_label: Annotated[str, typer.Option(help="Node labels: op_shape or op.")] = "op_shape",
) -> None:
    """Encode timm architectures; print a summary (and pairwise cosines), optionally save the vectors.

    Architectures of the catalogue are answered from it (no tracing, no torch) when the settings and the
    versions of networkx, torch and timm are the catalogue's: its rows are then what tracing would give.
    """
    import numpy as np

    if out is not None and out.suffix not in (".csv", ".npz"):
        raise Archi2VecError(f"--out must end in .csv or .npz. Got {str(out)!r}.")
    settings = {"n_features": n_features, "iterations": iterations, "node_label": node_label}
    found = _from_catalogue(archs, settings)
    rows, matrix, meta = found if found is not None else _by_tracing(archs, settings)
    typer.echo(_table(list(rows[0]), [[str(v) for v in r.values()] for r in rows]))
    if len(archs) > 1:
        cos = [
            [a, *(f"{v:.3f}" for v in line)]
            for a, line in zip(archs, matrix @ matrix.T, strict=True)
        ]
        typer.echo("\ncosine similarity")
        typer.echo(_table(["", *archs], cos, index=True))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".npz":
            width = max(len(a) for a in archs)
            np.savez(
                out,
                vectors=matrix,
                names=np.array(list(archs), dtype=f"<U{width}"),
                meta=np.array(json.dumps(meta)),
            )
        else:
            with open(out, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh, lineterminator="\n")
                writer.writerow(["arch", *(f"f{i}" for i in range(matrix.shape[1]))])
                writer.writerows(
                    [a, *(f"{v:.7g}" for v in row)] for a, row in zip(archs, matrix, strict=True)
                )
        logger.info("wrote %d vectors to %s", len(archs), out)


def _table(header: list[str], rows: list[list[str]], *, index: bool = False) -> str:
    """An aligned text table (no pandas: ``encode`` answers without importing it); columns right-aligned,
    the first one left-aligned when it is an ``index`` of row labels."""
    widths = [max(len(c) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        out = [
            c.ljust(w) if index and i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    return "\n".join(line(r) for r in [header, *rows])


# what a catalogue row depends on beyond the encoder settings (graphs: torch, timm; WL hashes: networkx)
_BUILT_WITH = ("archi2vec", "networkx", "torch", "timm")


def _from_catalogue(archs: list[str], settings: dict[str, Any]) -> tuple[list, Any, dict] | None:
    """``(rows, vectors, meta)`` of ``archs`` from the shipped catalogue, or None where any is not in it,
    the settings differ or the catalogue was built with other versions (then they are traced)."""
    from archi2vec.catalogue import load_catalogue, lookup
    from archi2vec.versions import environment

    try:
        names, _, cat = load_catalogue()
    except Archi2VecError as exc:
        logger.info("no catalogue to answer from (%s); tracing", exc)
        return None
    env, built = environment(), cat.get("environment", {})
    config = cat.get("config", {})
    if any(config.get(k) != v for k, v in settings.items()):
        return None
    if any(env.get(k) != built.get(k) for k in _BUILT_WITH):
        logger.info(
            "catalogue built with %s; tracing",
            ", ".join(f"{k} {built.get(k)}" for k in _BUILT_WITH),
        )
        return None
    known, records = set(names), cat.get("archs", {})
    rows = []
    for name in archs:
        row = name if name in known else name.split(".", 1)[0]  # arch.tag -> arch
        if row not in known or row not in records:
            return None
        rec = records[row]
        rows.append(
            {"arch": name, "kind": rec["kind"], "nodes": rec["n_nodes"], "edges": rec["n_edges"]}
        )
    logger.info("%d architecture(s) read from the catalogue", len(archs))
    return rows, lookup(archs, compute_missing=False), {"config": config, "environment": built}


def _by_tracing(archs: list[str], settings: dict[str, Any]) -> tuple[list, Any, dict]:
    """``(rows, vectors, meta)`` of ``archs``, each traced and encoded here."""
    import numpy as np

    from archi2vec.embed import Archi2Vec, environment
    from archi2vec.graph import to_networkx
    from archi2vec.trace import resolve_arch, trace_model

    encoder = Archi2Vec(**settings).fit()
    resolved = [resolve_arch(a) for a in archs]  # fail fast on a typo, before any tracing
    rows, vectors = [], []
    for name, arch in zip(archs, resolved, strict=True):
        trace = trace_model(arch)
        graph = to_networkx(trace)
        vectors.append(encoder.transform_one(graph))
        rows.append(
            {
                "arch": name,
                "kind": trace.kind,
                "nodes": graph.number_of_nodes(),
                "edges": graph.number_of_edges(),
            }
        )
    return rows, np.stack(vectors), {"config": encoder.config(), "environment": environment()}


@app.command()
def nearest(
    arch: Annotated[
        str, typer.Argument(help="timm architecture name (computed if not in the catalogue).")
    ],
    k: Annotated[int, typer.Option("--k", "-k", help="How many neighbours.")] = 10,
    catalogue: Annotated[
        Path | None, typer.Option(help="Catalogue directory (default: the shipped one).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """List the catalogue architectures most similar to ARCH (cosine of archi2vec vectors)."""
    from archi2vec.catalogue import nearest as _nearest

    if fmt not in ("table", "csv", "json"):
        raise Archi2VecError(f"--format must be table, csv or json. Got {fmt!r}.")
    frame = _nearest(arch, k, path=catalogue)
    if fmt == "csv":
        typer.echo(frame.to_csv(index=False, float_format="%.4f"), nl=False)
    elif fmt == "json":
        typer.echo(frame.to_json(orient="records", double_precision=4))
    else:
        typer.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


@app.command("build-catalogue")
def build_catalogue_cmd(
    out_dir: Annotated[
        Path | None, typer.Option(help="Catalogue directory (default: data/archi2vec).")
    ] = None,
    filter_: Annotated[
        str | None, typer.Option("--filter", help="timm.list_models() filter, e.g. 'resnet*'.")
    ] = None,
    timeout: Annotated[
        float, typer.Option(help="Seconds per architecture before it counts as failed.")
    ] = 120.0,
    fresh: Annotated[
        bool, typer.Option("--fresh/--resume", help="Start over or resume earlier progress.")
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed/--skip-failed", help="Retry failed architectures.")
    ] = False,
    threads: Annotated[int, typer.Option(help="torch threads.")] = 1,
    ray: Annotated[bool, typer.Option("--ray", help="Encode as Ray tasks (pip install ray).")] = False,
    address: Annotated[str | None, typer.Option(
        "--address", help="With --ray: the cluster to join (default $RAY_ADDRESS, else a local one).")] = None,
) -> None:
    """Encode every timm architecture (resumable) and write catalogue.npz + manifest.json."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from archi2vec.catalogue import build_catalogue
    from archi2vec.trace import import_timm

    timm = import_timm()
    import torch

    torch.set_num_threads(threads)
    names = timm.list_models(filter_) if filter_ else None
    with logging_redirect_tqdm():
        manifest = build_catalogue(
            names, out_dir=out_dir, timeout_s=timeout, resume=not fresh, retry_failed=retry_failed,
            ray=ray, address=address,
        )
    typer.echo(
        f"encoded {manifest['n_encoded']} of {manifest['n_requested']} architectures "
        f"({manifest['n_failed']} failed; graph kinds {manifest['graph_kinds']}); "
        f"encode time {manifest['timing']['encode_seconds_total']:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``archi2vec`` script; returns the exit code."""
    import typer.main

    args = sys.argv[1:] if argv is None else list(argv)
    _STATE["verbose"] = 0  # set by the root callback once the options are parsed
    command = typer.main.get_command(app)
    args = hoist_verbose(command, args)
    widen_help(args)
    try:
        command.main(args=args, prog_name="archi2vec", standalone_mode=False)
    except EXIT as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except ABORT as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            return 130
        print("Aborted.", file=sys.stderr)
        return 1
    except USAGE as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:  # pragma: no cover
            print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout closed early (`archi2vec nearest ... | head -1`)
        return 1
    except Exception as exc:
        user = (
            Archi2VecError,
            FileNotFoundError,
            NotADirectoryError,
            IsADirectoryError,
            PermissionError,
        )
        verbose = bool(_STATE["verbose"])
        if verbose:
            traceback.print_exc()
        print(error_line(exc, internal=not isinstance(exc, user), verbose=verbose), file=sys.stderr)
        return 1
    return 0


def run() -> None:  # pragma: no cover - console script shim
    """The ``archi2vec`` console script: :func:`main`, then the process ends without the teardown."""
    exit_now(main())


if __name__ == "__main__":  # pragma: no cover
    run()
