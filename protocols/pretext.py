"""Pretext-task accuracy during pretraining (CMD Table 7: "The top-1 accuracy of the context matching
and motion prediction tasks ... recorded during the pretraining process").

Nothing is run here: the accuracies are those the pretraining logged at every step (log.csv, next
to the checkpoint; CMD's `step_log` columns `pretext_<task>_top1`, computed in each step's forward
from the similarity matrices of Eq. (1) and (2), methods/cmd/losses.py `pretext_top1`). The metric
`<task>_top1_ep<N>` is the mean of that column over the steps of epoch N of the run, i.e. over the
training batches of that epoch (with the weights of each step as it was taken), not a separate
pass over the data after the epoch. The epochs N are the labels of the checkpoint's snapshot
schedule (`snapshots.labels`, {label: epoch of the run}: the paper's epochs, mapped by the scale
profile onto the run's when it trains fewer; methods/training/checkpoint.py snapshot_schedule), or
without one every epoch of the run; `epoch_labels` in the metrics file records the mapping.

With --plot, a figure of the pretext accuracies and the retrieval R@1 (the retrieval metrics files
given with --retrieval, `r_at_1_ep<N>` and the final `r_at_1`) against the pretraining epoch label,
reproduced beside the paper's values from --spec (e.g. tables/specs/cmd_table7.yaml).

    python -m protocols.pretext --checkpoint C.pt --manifest M.csv --root DIR --scale smoke --out metrics.json \\
        [--retrieval R.json ...] [--spec S.yaml --plot curves.png]
"""
from __future__ import annotations

import argparse
import re
from functools import lru_cache
from pathlib import Path

import pandas as pd

from core import io
from core.errors import MissingInputError, SuiteError
from protocols.cli import protocol_main

COLUMN = re.compile(r"^pretext_(?P<task>[a-z0-9_]+)_top1$")  # a log.csv column of a pretext accuracy
EPOCH_METRIC = re.compile(r"^(?P<base>.+)_ep(?P<label>[1-9]\d*)$")
SPECS = Path(__file__).resolve().parent.parent / "tables" / "specs"


def epoch_labels(checkpoint: dict, log: pd.DataFrame) -> dict[int, int]:
    """{label: epoch of the run (1-based)} the metrics are reported at: the checkpoint's snapshot
    labels, else every epoch the log has."""
    snapshots = checkpoint.get("snapshots")
    if snapshots:
        return {int(k): int(v) for k, v in snapshots["labels"].items()}
    return {int(e) + 1: int(e) + 1 for e in sorted(log["epoch"].unique())}


def pretext_accuracies(log: pd.DataFrame, labels: dict[int, int]) -> dict[str, float]:
    """`<task>_top1_ep<label>`: the mean of log column `pretext_<task>_top1` over the steps of the
    run's epoch `labels[label]` (log.csv counts epochs from 0). An epoch without steps in the log
    is an error, never a number."""
    tasks = {m.group("task"): c for c in log.columns if (m := COLUMN.match(c))}
    if not tasks:
        raise SuiteError("log.csv has no pretext accuracy column (pretext_<task>_top1): the method logs none "
                         "(its step_log), or the run predates it; pretrain again")
    metrics = {}
    for label, epoch in sorted(labels.items()):
        steps = log[log["epoch"] == epoch - 1]
        if steps.empty:
            raise SuiteError(f"log.csv has no step of epoch {epoch} (label {label}); epochs logged: "
                             f"{sorted(int(e) + 1 for e in log['epoch'].unique())}")
        for task, column in tasks.items():
            metrics[f"{task}_top1_ep{label}"] = float(steps[column].mean())
    return metrics


def read_log(checkpoint_dir: Path) -> pd.DataFrame:
    path = checkpoint_dir / "log.csv"
    if not path.is_file():
        raise MissingInputError(f"{path}: no pretraining log next to the checkpoint (methods/training/engine.py writes it)")
    return pd.read_csv(path)


def evaluate(checkpoint: dict, manifest: pd.DataFrame, root: Path, motion_cache: Path | None, cfg: dict, seed: int,
             checkpoint_dir: Path | None = None, retrieval: list[Path] | None = None, spec: Path | None = None,
             plot: Path | None = None) -> dict:
    if checkpoint_dir is None:
        raise SuiteError("the pretext protocol reads log.csv next to the checkpoint: run it with --checkpoint")
    log = read_log(checkpoint_dir)
    labels = epoch_labels(checkpoint, log)
    metrics = pretext_accuracies(log, labels)
    videos = int(checkpoint["provenance"].get("videos") or (manifest["split"] == "train").sum())
    metrics.update({"epoch_labels": {str(k): v for k, v in labels.items()},
                    "num_train_videos": videos,
                    "num_test_videos": videos,  # the accuracies are taken on the pretraining batches
                    "steps_per_epoch": int(log.groupby("epoch").size().max()),
                    "views": "1x1", "score_averaging": "none"})  # one sample per video per step, no views
    if plot is not None:
        curves_figure(metrics, labels, {Path(p).stem: io.read_json(p) for p in retrieval or []}, spec,
                      checkpoint["provenance"], plot)
    return metrics


@lru_cache(maxsize=None)
def paper_curves(method: str, variant: str, pretrain: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(spec path, retrieval evaluation sets) of each table spec with a `pretext` row of this run:
    the rule's inputs for the plot (the retrieval rows of the same run in the same part)."""
    from tables.schema import load_spec

    found = []
    for path in sorted(SPECS.glob("*.yaml")):
        cells = [c for c in paper_cells(load_spec(path)) if (c["method"], c["variant"], c["pretrain"]) == (method, variant, pretrain)]
        if any(c["protocol"] == "pretext" for c in cells):
            evals = sorted({c["eval"] for c in cells if c["protocol"] == "retrieval"})
            found.append((str(path), tuple(evals)))
    return tuple(found)


def paper_cells(spec) -> list[dict]:
    """Every reproduced cell of a spec with its run, protocol, metric, evaluation set and the
    paper's value."""
    out = []
    for part, row, column, cell in spec.cells():
        rep = row.reproduce
        if not rep:
            continue
        out.append({"row": row.labels, "method": rep["method"], "variant": rep["variant"], "pretrain": rep["pretrain"],
                    "protocol": column.protocol or rep.get("protocol"), "column": column.name,
                    "metric": (rep.get("metric") or {}).get(column.name, column.metric),
                    "eval": (rep.get("eval") or {}).get(column.name, column.eval), "paper": cell.value})
    return out


def metric_label(metric: str, final: int) -> tuple[str, int]:
    """(metric without its epoch suffix, epoch label): `r_at_1_ep5` -> ("r_at_1", 5); a metric without
    a suffix is the final checkpoint's, at label `final`."""
    match = EPOCH_METRIC.match(metric)
    return (match.group("base"), int(match.group("label"))) if match else (metric, final)


def curves_figure(metrics: dict, labels: dict[int, int], retrieval: dict[str, dict], spec: Path | None, provenance: dict,
                  path: Path) -> None:
    """The pretext accuracies and retrieval R@1 against the epoch label, reproduced (solid) and the
    paper's (dashed, from `spec`), written to `path` (png). `retrieval`: {evaluation set: metrics}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    final = max(labels)
    curves: dict[str, dict[int, float]] = {}
    for key, value in metrics.items():
        match = EPOCH_METRIC.match(key)
        if match and int(match.group("label")) in labels and isinstance(value, float):
            curves.setdefault(match.group("base"), {})[int(match.group("label"))] = value
    for evaldata, data in retrieval.items():
        name = f"retrieval r_at_1 ({evaldata})"
        points = {label: data[f"r_at_1_ep{label}"] for label in labels if f"r_at_1_ep{label}" in data}
        if "r_at_1" in data:
            points[final] = data["r_at_1"]
        curves[name] = {label: float(v) for label, v in points.items()}
    paper: dict[str, dict[int, float]] = {}
    if spec is not None:
        from tables.schema import load_spec

        for cell in paper_cells(load_spec(spec)):
            if (cell["method"], cell["variant"], cell["pretrain"]) != (provenance.get("method"), provenance.get("variant"),
                                                                      provenance.get("pretrain")):
                continue
            if cell["paper"] is None or cell["protocol"] not in ("pretext", "retrieval"):
                continue
            base, label = metric_label(cell["metric"], final)
            name = f"retrieval r_at_1 ({cell['eval']})" if cell["protocol"] == "retrieval" else base
            if cell["protocol"] == "retrieval" and base != "r_at_1":
                continue
            paper.setdefault(name, {})[label] = float(cell["paper"])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = {}
    for name in sorted(set(curves) | set(paper)):
        colours[name] = f"C{len(colours)}"
        if name in curves and curves[name]:
            xs = sorted(curves[name])
            ax.plot(xs, [curves[name][x] for x in xs], "o-", color=colours[name], label=f"{name} (reproduced)")
        if name in paper and paper[name]:
            xs = sorted(paper[name])
            ax.plot(xs, [paper[name][x] for x in xs], "s--", color=colours[name], alpha=0.6, label=f"{name} (paper)")
    ticks = sorted(labels)
    ax.set_xscale("log")
    ax.set_xticks(ticks)
    identity = all(k == v for k, v in labels.items())
    ax.set_xticklabels([str(k) if identity else f"{k}\n(ep {labels[k]})" for k in ticks], fontsize=7)
    ax.set_xlabel("pretraining epoch" + ("" if identity else " (paper's label; run's epoch below)"))
    ax.set_ylabel("%")
    ax.set_title(f"{provenance.get('method')} {provenance.get('variant')}/{provenance.get('pretrain')} "
                 f"({provenance.get('scale')}): pretext top-1 and retrieval R@1", fontsize=8)
    ax.legend(fontsize=6)
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--retrieval", type=Path, action="append", default=[],
                            help="retrieval metrics of the same run, for the plot's R@1 curve (repeatable)")
        parser.add_argument("--spec", type=Path, default=None, help="table spec with the paper's values, for the plot")
        parser.add_argument("--plot", type=Path, default=None, help="write the curves figure (png) here")

    protocol_main("pretext", evaluate, __doc__, HEADLINE, argv, add_arguments=add_arguments,
                  keywords=lambda args: {"checkpoint_dir": args.checkpoint.parent, "retrieval": args.retrieval,
                                         "spec": args.spec, "plot": args.plot})


HEADLINE = "context_matching_top1_ep1"  # what the command's last line prints (CMD Table 7's first cell)


if __name__ == "__main__":
    main()
