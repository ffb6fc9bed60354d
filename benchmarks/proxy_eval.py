"""Leave-one-task-out with the text proxy: does a task's class-name embedding beat the history prior?

For every task of a shipped history: hold it out entirely (its cells and its embedding), standardise
and fit the transfer subspace on the other tasks, fit each task projector on the other tasks' text-proxy
embeddings (the shipped ``data/task_embeddings/text_minilm.safetensors``), and rank every model for the
held-out task from its embedding alone. Per task: Kendall tau-b and both weighted-tau conventions
(``fennec.evaluation.rankmetrics``) against the true fine-tuning results, beside the history prior (a
model's mean standardised score over the training tasks).

Each projector is reported raw and "+fb": with the far-query fallback (a held-out task farther from
every training task than the projector's calibrated threshold is ranked by the subspace prior instead),
which is what ``Recommender.rank_embedding`` does.

    python benchmarks/proxy_eval.py [--histories sfda,parc,shift_vtab,transfergraph] [--out results.csv]

Single-threaded BLAS (set below); deterministic.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from fennec.data.shipped import load_history  # noqa: E402
from fennec.evaluation import EvalConfig  # noqa: E402
from fennec.evaluation.baselines import history_prior  # noqa: E402
from fennec.evaluation.rankmetrics import kendall_tau, weighted_tau  # noqa: E402
from fennec.history.table import TaskScaler  # noqa: E402
from fennec.proxy import load_shipped_text_embeddings  # noqa: E402
from fennec.proxy.projector import METHODS, TaskProjector  # noqa: E402

METRICS = {"kendall_tau": "Kendall", "weighted_tau_scipy": "wtau(scipy)", "weighted_tau_truth": "wtau(truth)"}


def metrics(pred, truth) -> dict[str, float]:
    ok = np.isfinite(pred) & np.isfinite(truth)
    p, t = pred[ok], truth[ok]
    return {"kendall_tau": kendall_tau(p, t), "weighted_tau_scipy": weighted_tau(p, t, weigh_by="scipy"),
            "weighted_tau_truth": weighted_tau(p, t, weigh_by="truth")}


def loto(name: str, emb, methods) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hist = load_history(name)
    Y, _, tasks = hist.to_matrix()
    E, missing = emb.lookup(tasks)
    if missing:
        print(f"  {name}: no text embedding for {missing}; they are left out")
    sub_cfg = EvalConfig().recommender  # the evaluation's subspace configuration
    rows = []
    for j, task in enumerate(tasks):
        if task in missing:
            continue
        train_cols = np.array([c for c in range(len(tasks)) if c != j and tasks[c] not in missing])
        train = Y[:, train_cols]
        truth = np.where(np.isfinite(train).any(axis=1), Y[:, j], np.nan)
        if np.isfinite(truth).sum() < 3:
            continue
        Z = TaskScaler.fit(train).transform(train)
        sub = sub_cfg.subspace().fit(Z)
        cold = sub.cold_task_prediction()
        base = {"history": name, "task_id": task}
        rows.append({**base, "method": "history_prior", **metrics(history_prior(Z), truth)})
        rows.append({**base, "method": "subspace_prior", **metrics(cold, truth)})
        for m in methods:
            proj = TaskProjector(m).fit(E[train_cols], Z=Z, subspace=sub, task_ids=[tasks[c] for c in train_cols])
            pred = proj.predict(E[j])
            near, dist = proj.nearest(E[j])
            far = dist > proj.max_distance_
            info = {"nearest": near, "distance": dist, "threshold": proj.max_distance_, "far": far,
                    "params": str(proj.params_)}
            rows.append({**base, "method": m, **metrics(pred, truth), **info})
            rows.append({**base, "method": f"{m}+fb", **metrics(cold if far else pred, truth), **info})
    return pd.DataFrame(rows)


def report(df: pd.DataFrame, name: str, methods) -> None:
    order = ["history_prior", "subspace_prior"] + [x for m in methods for x in (m, f"{m}+fb")]
    d = df[df["history"] == name]
    print(f"\n=== {name}: leave-one-task-out, text proxy (all-MiniLM-L6-v2), per-task Kendall tau-b")
    table = d.pivot_table(index="task_id", columns="method", values="kendall_tau")[order[:2] + list(methods)]
    info = d[d["method"] == methods[0]].set_index("task_id")[["nearest", "distance", "far"]]
    table = table.join(info)
    table.loc["mean"] = table[order[:2] + list(methods)].mean()
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"\n--- {name}: means over {d['task_id'].nunique()} tasks (+fb: far-query fallback to the prior)")
    means = d.groupby("method")[list(METRICS)].mean().reindex(order).rename(columns=METRICS)
    wins = d.pivot_table(index="task_id", columns="method", values="kendall_tau")
    means["tasks>prior"] = [int((wins[m] > wins["history_prior"] + 1e-12).sum()) for m in means.index]
    print(means.to_string(float_format=lambda v: f"{v:.3f}"))


def main() -> None:
    ap = argparse.ArgumentParser(description="Leave-one-task-out with the text proxy.")
    ap.add_argument("--histories", default="sfda,parc,shift_vtab,transfergraph")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--out", default=None, help="write the per-task rows to this CSV")
    args = ap.parse_args()
    emb = load_shipped_text_embeddings()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    frames = []
    for name in [h.strip() for h in args.histories.split(",") if h.strip()]:
        t0 = time.perf_counter()
        frames.append(loto(name, emb, methods))
        report(frames[-1], name, methods)
        print(f"({name}: {time.perf_counter() - t0:.1f} s, 1 BLAS thread)")
    df = pd.concat(frames, ignore_index=True)
    print("\n=== summary: mean Kendall tau-b per history (+fb = deployed behaviour)")
    summ = df.pivot_table(index="method", columns="history", values="kendall_tau", aggfunc="mean")
    order = ["history_prior", "subspace_prior"] + [x for m in methods for x in (m, f"{m}+fb")]
    summ = summ.reindex(order)
    summ["mean"] = summ.mean(axis=1)
    print(summ.to_string(float_format=lambda v: f"{v:.3f}"))
    best = summ.drop(index=["history_prior", "subspace_prior"])["mean"].idxmax()
    print(f"\nbest projector by mean Kendall over these histories: {best} "
          f"({summ.loc[best, 'mean']:.3f} vs history prior {summ.loc['history_prior', 'mean']:.3f})")
    if args.out:
        df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
