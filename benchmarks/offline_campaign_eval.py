"""The image proxy validated end to end on the offline campaign: leave-one-task-out, the held-out task placed
by the EfficientNet-Lite0 embedding of its images, beside the text proxy (its class names through the packaged
MiniLM), the history prior and ImageNet top-1.

    python benchmarks/offline_campaign_eval.py [--history data/campaigns/offline_campaign.csv]

Everything goes through the command line, as a user would run it (each fold fits a Recommender and calls
its query): ``fennec embed-tasks --campaign SPEC`` twice (images through efficientnet-lite0; class names
through the text proxy), then ``fennec evaluate HISTORY --protocol loto,proxy --task-embeddings FILE`` for
each. Prints the per-task Kendall tau table (markdown) and the means.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def fennec(*args: str) -> None:
    from fennec.cli import main

    code = main([str(a) for a in args])
    if code:
        raise SystemExit(f"fennec {' '.join(map(str, args))} exited {code}")


def tau(results: pd.DataFrame, protocol: str, method: str) -> pd.Series:
    rows = results[(results["protocol"] == protocol) & (results["method"] == method)]
    return rows.groupby("task_id")["kendall_tau"].mean()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--history", type=Path, default=REPO / "data/campaigns/offline_campaign.csv")
    ap.add_argument("--spec", type=Path, default=REPO / "data/campaigns/offline_campaign.toml")
    ap.add_argument("--work", type=Path, default=REPO / "runs/offline_campaign/eval")
    ap.add_argument("--max-images", type=int, default=100)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    image, text = args.work / "tasks_lite0.safetensors", args.work / "tasks_text.safetensors"
    fennec(
        "embed-tasks",
        "--campaign",
        args.spec,
        "--proxy",
        "efficientnet-lite0",
        "--use",
        "images",
        "--max-images",
        args.max_images,
        "--out",
        image,
    )
    fennec(
        "embed-tasks", "--campaign", args.spec, "--proxy", "text", "--use", "names", "--out", text
    )
    res = {}
    for name, emb in (("image", image), ("text", text)):
        out = args.work / f"evaluate_{name}.csv"
        fennec(
            "evaluate",
            args.history,
            "--protocol",
            "loto,proxy",
            "--task-embeddings",
            emb,
            "--out",
            out,
            "--format",
            "csv",
        )
        res[name] = pd.read_csv(out)
    img, txt = res["image"], res["text"]
    table = pd.DataFrame(
        {
            "image proxy (lite0)": tau(img, "proxy:all", "fennec"),
            "text proxy (MiniLM)": tau(txt, "proxy:all", "fennec"),
            "history prior": tau(img, "loto:all", "history_prior"),
            "ImageNet top-1 (3 pretrained)": tau(img, "loto", "imagenet_top1"),
            "random": tau(img, "loto:all", "random"),
        }
    )
    table["nearest task (image emb.)"] = nearest_task_tau(args.history, image)
    table.loc["mean"] = table.mean(numeric_only=True)
    print(
        f"\nleave-one-task-out Kendall tau per task, {args.history.name} (6 models; top-1 on the 3 with one)\n"
    )
    print(markdown(table))


def nearest_task_tau(history: Path, embeddings: Path) -> pd.Series:
    """A diagnostic, not a Fennec method: Kendall tau of the held-out task's truth with the measured scores of
    its nearest other task in the embedding (does the embedding find a task that ranks the models alike?)."""
    import numpy as np
    from scipy.stats import kendalltau

    from fennec.history.table import History
    from fennec.proxy import TaskEmbeddings

    Y, _, tasks = History.from_csv(history).to_matrix()
    emb = TaskEmbeddings.load(embeddings)
    v = np.stack([emb.vectors[emb.task_ids.index(t)] for t in tasks])
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    sim = v @ v.T
    np.fill_diagonal(sim, -np.inf)
    return pd.Series(
        {t: kendalltau(Y[:, int(np.argmax(sim[j]))], Y[:, j])[0] for j, t in enumerate(tasks)}
    )


def markdown(table: pd.DataFrame) -> str:
    head = "| task | " + " | ".join(table.columns) + " |"
    rule = "|---|" + "---:|" * len(table.columns)
    body = [
        "| " + " | ".join([str(i)] + ["" if pd.isna(v) else f"{v:.3f}" for v in row]) + " |"
        for i, row in zip(table.index, table.to_numpy(), strict=True)
    ]
    return "\n".join([head, rule, *body])


if __name__ == "__main__":
    main()
