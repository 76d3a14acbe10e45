"""The orderings report: each paper's central ordering, and each method's learning check, on the
mini world, over the scale profile's seeds (`tables/orderings.yaml` lists them).

    python -m tables.orderings --scale mini --out tables/orderings     # -> .md, .csv, .png

A row compares two runs evaluated alike: by the report's `evaluation`, or by the row's own where the
paper's comparison is made under another protocol (a row's `evaluation:` replaces the keys it names;
HCML Table 2 trains with labels from scratch, protocol joint_train). Per seed it takes the difference better - worse (the
runs of one seed share their seed, so the difference is paired); the row reports the mean
difference, its spread (the sample standard deviation of the per-seed differences) and a verdict:
`holds` (difference above the spread), `reversed` (below minus the spread), `not resolved`
(within it, or fewer than two seeds), or `not built` (the method or variant does not exist yet).
The learning check passes when the pretrained encoder beats random init by at least
`min_points` and by at least `min_spreads` spreads. Numbers come only from metrics files.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from core.config import load_scale, method_variants
from core.errors import SuiteError
from core.io import atomic_path, write_csv, write_text
from core.seeds import profile_seeds, run_folders
from methods.training.registry import method_names
from tables.metrics import read_metrics

SPEC = Path(__file__).resolve().parent / "orderings.yaml"
RANDOM_INIT = "random_init"


def load_spec(path: str | Path = SPEC) -> dict:
    with open(path) as f:
        return yaml.safe_load(f)


def built(run: dict) -> bool:
    """Whether the suite can run `run` ({method, variant}) today."""
    return run["method"] in method_names() and run["variant"] in method_variants(run["method"])


def baseline_of(run: dict) -> dict:
    """The learning check's other side: the same method's encoder at random initialisation."""
    return {"method": run["method"], "variant": RANDOM_INIT, "label": "random init"}


def evaluation_of(row: dict, spec: dict) -> dict:
    """The evaluation a row's two runs are compared by: the report's, with the row's own keys over it."""
    return {**spec["evaluation"], **(row.get("evaluation") or {})}


def describe(e: dict) -> str:
    pretrained = "from scratch" if e["pretrain"] == "none" else f"pretrained on {e['pretrain']}"
    return f"{e['protocol']} {e['metric']} on {e['evaldata']}, {pretrained}"


def comparisons(spec: dict) -> list[tuple[str, dict, dict, dict]]:
    """(section, row, better, worse) of every row of the report, orderings first."""
    rows = [("ordering", row, row["better"], row["worse"]) for row in spec["orderings"]]
    for run in spec["learning_check"]["runs"]:
        row = {"paper": run["label"], "source": "learning check"}
        rows.append(("learning check", row, run, baseline_of(run)))
    return rows


def metrics_paths(run: dict, e: dict, profile: dict, results: str) -> list[str]:
    """The metrics file of each seed of `run` under evaluation `e` (`evaluation_of`)."""
    base = f"{results}/eval/{run['method']}/{run['variant']}/{e['pretrain']}"
    return [f"{folder}/{e['protocol']}/{e['evaldata']}.json" for folder in run_folders(base, profile)]


def required_metrics(spec: dict, profile: dict, results: str) -> list[str]:
    """Every metrics file the report reads: those of the built rows' runs."""
    paths = []
    for _, row, better, worse in comparisons(spec):
        if built(better) and built(worse):
            e = evaluation_of(row, spec)
            paths += metrics_paths(better, e, profile, results) + metrics_paths(worse, e, profile, results)
    return sorted(set(paths))


@dataclass
class Comparison:
    better: list[float]
    worse: list[float]

    @property
    def differences(self) -> list[float]:
        return [b - w for b, w in zip(self.better, self.worse)]

    @property
    def difference(self) -> float:
        return statistics.fmean(self.differences)

    @property
    def spread(self) -> float | None:
        return statistics.stdev(self.differences) if len(self.differences) > 1 else None


def ordering_verdict(c: Comparison) -> str:
    if c.spread is None:
        return "not resolved"
    if c.difference > c.spread:
        return "holds"
    if c.difference < -c.spread:
        return "reversed"
    return "not resolved"


def learning_verdict(c: Comparison, spec: dict) -> str:
    bar = spec["learning_check"]
    ok = c.spread is not None and c.difference >= bar["min_points"] and c.difference >= bar["min_spreads"] * c.spread
    return "passes" if ok else "fails"


def mean_std(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{statistics.fmean(values):.1f} ± {statistics.stdev(values):.1f}"


def report(spec: dict, scale: str, results: str) -> pd.DataFrame:
    """One row per comparison: runs, per-seed values, difference, spread, seeds, verdict."""
    profile = load_scale(scale)
    rows = []
    for section, row, better, worse in comparisons(spec):
        e = evaluation_of(row, spec)
        out = {"section": section, "paper": row["paper"], "source": row["source"],
               "ordering": f"{better['label']} > {worse['label']}", "better": f"{better['method']}/{better['variant']}",
               "worse": f"{worse['method']}/{worse['variant']}", "better_values": "", "worse_values": "",
               "better_mean": math.nan, "better_std": math.nan, "worse_mean": math.nan, "worse_std": math.nan,
               "difference": math.nan, "spread": math.nan, "seeds": 0, "verdict": "not built",
               "evaluation": describe(e), "scale": scale}
        if built(better) and built(worse):
            values = [[float(read_metrics(p, e["protocol"], scale)[e["metric"]]) for p in metrics_paths(run, e, profile, results)]
                      for run in (better, worse)]
            c = Comparison(*values)
            for side, v in zip(("better", "worse"), values):
                out.update({f"{side}_values": ";".join(f"{x:.2f}" for x in v), f"{side}_mean": statistics.fmean(v),
                            f"{side}_std": statistics.stdev(v) if len(v) > 1 else math.nan})
            out.update({"difference": c.difference, "spread": c.spread if c.spread is not None else math.nan,
                        "seeds": len(values[0]),
                        "verdict": ordering_verdict(c) if section == "ordering" else learning_verdict(c, spec)})
        rows.append(out)
    return pd.DataFrame(rows)


def _cell(frame_row, side: str) -> str:
    if frame_row["verdict"] == "not built":
        return "not built"
    return mean_std([float(x) for x in frame_row[f"{side}_values"].split(";")])


def _signed(value: float) -> str:
    return "" if math.isnan(value) else f"{value:+.1f}"


def markdown(frame: pd.DataFrame, spec: dict, scale: str) -> str:
    e, bar = spec["evaluation"], spec["learning_check"]
    seeds = profile_seeds(load_scale(scale))
    lines = [f"# Orderings on the {scale} world", "",
             f"{e['protocol']} {e['metric']} (%) on {e['evaldata']}, encoders pretrained on {e['pretrain']} "
             "(a row evaluated otherwise names its evaluation); "
             f"seeds {seeds if seeds else 'one (the config seed)'}. Cells are mean ± standard deviation over seeds; "
             "difference and spread are the mean and standard deviation of the per-seed differences. "
             "Verdict: holds (difference > spread), reversed (difference < -spread), not resolved (within the spread, "
             "or one seed).", ""]
    header = "| {} | {} | {} | better | worse | difference | spread | seeds | verdict |"
    for section, title, first in (("ordering", "Orderings", ("paper", "source", "ordering")),
                                  ("learning check", "Learning check", ("method", "bar", "comparison"))):
        part = frame[frame["section"] == section]
        lines += [f"## {title}", ""]
        if section == "learning check":
            lines += [f"Passes when pretraining beats random init by at least {bar['min_points']} points and "
                      f"{bar['min_spreads']} spreads.", ""]
        lines += [header.format(*first), "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
        for _, r in part.iterrows():
            spread = "" if math.isnan(r["spread"]) else f"{r['spread']:.1f}"
            source = r["source"] if section == "ordering" else f"≥ {bar['min_points']} pts, ≥ {bar['min_spreads']} sd"
            if r["evaluation"] != describe(e):
                source += f" ({r['evaluation']})"
            lines.append(f"| {r['paper']} | {source} | {r['ordering']} | {_cell(r, 'better')} | {_cell(r, 'worse')} | "
                         f"{_signed(r['difference'])} | {spread} | {r['seeds'] or ''} | {r['verdict']} |")
        lines.append("")
    return "\n".join(lines)


def plot(frame: pd.DataFrame, path: Path, scale: str) -> None:
    """Each row's mean difference with an error bar of one spread; rows not built are labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['paper']}: {r['ordering']}" for _, r in frame.iterrows()]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(frame) + 1.2))
    y = list(range(len(frame)))[::-1]
    for yi, (_, r) in zip(y, frame.iterrows()):
        if r["verdict"] == "not built":
            ax.text(0, yi, "not built", va="center", ha="center", fontsize=7, color="grey")
            continue
        colour = {"holds": "tab:green", "passes": "tab:green", "reversed": "tab:red", "fails": "tab:red"}.get(r["verdict"], "tab:orange")
        ax.errorbar(r["difference"], yi, xerr=0 if math.isnan(r["spread"]) else r["spread"], fmt="o", color=colour, capsize=3)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("difference, better - worse (top-1 points; bar: spread over seeds)")
    ax.set_title(f"Orderings and learning check, {scale} scale", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--scale", default="mini")
    parser.add_argument("--results", default=None, help="results folder (default results/<scale>)")
    parser.add_argument("--out", type=Path, default=Path("tables/orderings"), help="output stem: .md, .csv, .png")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
        frame = report(spec, args.scale, args.results or f"results/{args.scale}")
        text = markdown(frame, spec, args.scale)
    except SuiteError as exc:
        sys.exit(f"error: {exc}")
    # Everything is computed before anything is written, so a failed report leaves the last one whole.
    plot(frame, args.out.with_suffix(".png"), args.scale)
    write_csv(args.out.with_suffix(".csv"), frame)
    write_text(args.out.with_suffix(".md"), text)
    print(text)


if __name__ == "__main__":
    main()
