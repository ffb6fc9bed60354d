"""The ``archi2vec`` command line: encode architectures, query the catalogue, rebuild it.

Results go to stdout; logs and progress to stderr. An :class:`~archi2vec.errors.Archi2VecError` ends
the run with one ``error: ...`` line on stderr and exit code 1 (``-v`` adds the traceback); usage
errors exit 2. It lives outside ``__main__`` so that importing it never runs it.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from archi2vec.errors import Archi2VecError

# typer >= 0.2x vendors click (typer._click) and raises its own exception classes; older typer raises
# click's. Catch both, so usage errors exit 2 with click's message rather than escaping as a traceback.
_EXIT: tuple[type[BaseException], ...] = (typer.Exit,)
_ABORT: tuple[type[BaseException], ...] = (typer.Abort,)
_USAGE: tuple[type[BaseException], ...] = tuple(
    c for c in (getattr(typer, "TyperException", None),) if isinstance(c, type)
)
try:
    import click
except ImportError:  # pragma: no cover - typer without click
    pass
else:
    _EXIT += (click.exceptions.Exit,)
    _ABORT += (click.exceptions.Abort,)
    _USAGE += (click.ClickException,)

app = typer.Typer(
    name="archi2vec",
    help="Model architecture -> computation graph -> fixed-size vector.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="-v: INFO logs and tracebacks; -vv: DEBUG."
        ),
    ] = 0,
) -> None:
    """archi2vec: vectors of model architectures (Weisfeiler–Lehman features of their fx graphs)."""
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
    """Encode timm architectures; print a summary (and pairwise cosines), optionally save the vectors."""
    import numpy as np
    import pandas as pd

    from archi2vec.embed import Archi2Vec, environment
    from archi2vec.graph import to_networkx
    from archi2vec.trace import resolve_arch, trace_model

    if out is not None and out.suffix not in (".csv", ".npz"):
        raise Archi2VecError(f"--out must end in .csv or .npz. Got {str(out)!r}.")
    encoder = Archi2Vec(n_features=n_features, iterations=iterations, node_label=node_label).fit()
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
    matrix = np.stack(vectors)
    summary = pd.DataFrame(rows)
    typer.echo(summary.to_string(index=False))
    if len(archs) > 1:
        cos = pd.DataFrame(matrix @ matrix.T, index=list(archs), columns=list(archs)).round(3)
        typer.echo("\ncosine similarity")
        typer.echo(cos.to_string())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".npz":
            width = max(len(a) for a in archs)
            meta = json.dumps({"config": encoder.config(), "environment": environment()})
            np.savez(
                out,
                vectors=matrix,
                names=np.array(list(archs), dtype=f"<U{width}"),
                meta=np.array(meta),
            )
        else:
            frame = pd.DataFrame(matrix, columns=[f"f{i}" for i in range(matrix.shape[1])])
            frame.insert(0, "arch", list(archs))
            frame.to_csv(out, index=False, float_format="%.7g")
        logging.getLogger("archi2vec").info("wrote %d vectors to %s", len(archs), out)


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


def _one_line(exc: BaseException) -> str:
    text = (
        str(exc)
        if not isinstance(exc, OSError) or not exc.filename
        else f"{exc.strerror}: {exc.filename}"
    )
    return " ".join(text.split())


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``archi2vec`` script; returns the exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    verbose = any(
        a in ("--verbose",)
        or (a.startswith("-") and not a.startswith("--") and set(a[1:]) == {"v"})
        for a in args
    )
    try:
        app(args=args, prog_name="archi2vec", standalone_mode=False)
    except _EXIT as exc:
        return int(getattr(exc, "exit_code", 0))
    except _ABORT:
        print("Aborted.", file=sys.stderr)
        return 1
    except _USAGE as exc:
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:  # pragma: no cover
            print(f"error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except (
        Archi2VecError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
    ) as exc:
        if verbose:
            traceback.print_exc()
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    return 0


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
