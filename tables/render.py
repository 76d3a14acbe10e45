"""Render a table spec: the paper's numbers beside this suite's reproduced numbers.

    python -m tables.render --spec tables/specs/maclr_table1.yaml --scale smoke \
        --results results/smoke --md tables/maclr_table1.md --csv tables/maclr_table1.csv \
        --plot tables/maclr_table1.png

A reproduced number is only ever read from a metrics file (or results/compute/compute.csv) of a
runnable cell; every other cell says why it has none.
"""
from __future__ import annotations

import argparse
import datetime
import sys
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import pandas as pd

from core import io
from core.config import load_scale, method_config
from core.errors import MetricsError, SuiteError
from methods.training.registry import method_class
from protocols.cli import protocol_settings, recipe_owner
from tables.metrics import read_metrics
from tables.runs import COMPUTE_CSV, ROOT, CellRun, cell_runs, compute_value, has_compute_cells, read_compute_csv
from tables.schema import Spec, derived_value, load_spec

FULL_SCALE = "full"
# Fields of a metrics JSON that say how a run was made; shown in the header when present.
PROVENANCE_FIELDS = ("flow_estimator", "motion_estimator", "motion", "decoder", "git_commit", "run_id",
                     "checkpoint", "views", "eval_data_fingerprint")
# The compact provenance of each metrics file, one row of the table's "Runs" section.
RUN_COLUMNS = ("commit", "data", "clip", "views", "init", "seeds", "packages", "device", "deviations")
# Compute counts are of the papers' full-size networks at the papers' inputs at every scale, so a
# compute cell carries the verdict of results/compute/compute.csv (tables/compute.py's tolerance).
COMPUTE_VERDICTS = {"match": "match", "mismatch": "differs"}
CSV_COLUMNS = ["table", "part", "row", "column", "paper", "legibility", "reproduced", "delta", "status", "scale"]


@dataclass
class RenderedCell:
    part: str
    row: str
    column: str
    paper: float | None
    legibility: str
    reproduced: float | None
    delta: float | None
    status: str
    text: str


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}" if abs(x - round(x, 1)) < 1e-9 else f"{x:.2f}"


def _paper_text(value: float | None, legibility: str) -> str:
    if legibility == "illegible":
        return "illegible"
    if legibility == "not_reported":
        return "–"
    return _fmt(value) + ("†" if legibility == "reconstructed" else "")


def _metric_value(data: dict, path: Path, run: CellRun) -> float:
    """`run`'s number in its checked metrics file (a protocol may be configured not to write it,
    e.g. an R@k whose k the profile's `ks` lacks)."""
    if run.metric not in data:
        raise MetricsError(f"{path}: no key {run.metric!r}, which part {run.part!r}, row {run.row!r}, column "
                           f"{run.column!r} of the table shows (keys: {', '.join(sorted(data))})")
    return float(data[run.metric])


def status_of(kind: str, reproduced: float | None, paper: float | None, scale: str, tolerance: float) -> str:
    if kind == "quoted":
        return "quoted"
    if kind == "derived":
        return "derived" if reproduced is not None else "not run"
    if reproduced is None:
        return "not run"
    if scale != FULL_SCALE:
        return scale
    if paper is None:
        return "no paper value"
    return "match" if abs(reproduced - paper) <= tolerance + 1e-9 else "differs"


def render_cells(spec: Spec, scale: str, results: str, root: Path = ROOT) -> tuple[list[RenderedCell], list[dict]]:
    """Every value cell of `spec` with its reproduced number (if any) and status; and the metrics read."""
    runs = {(r.part, r.row, r.column): r for r in cell_runs(spec, scale, results, root)}
    compute = read_compute_csv(root / COMPUTE_CSV) if has_compute_cells(spec) else {}
    provenance: list[dict] = []
    read: dict[str, dict] = {}
    how: dict[tuple[str, str, str], str] = {}  # cell -> how its run differs from the paper's protocol
    out: list[RenderedCell] = []
    for part in spec.parts:
        reproduced_by_row: dict[str, dict[str, float | None]] = {}
        compute_status: dict[tuple[str, str], str] = {}
        for row in part.rows:
            for col in part.value_columns:
                cell = row.cells[col.name]
                run = runs.get((part.id, row.id, col.name))
                value = None
                if run is not None and run.runnable:
                    if run.path is not None:
                        path = Path(run.path) if Path(run.path).is_absolute() else root / run.path
                        if path.exists():
                            if run.path not in read:
                                read[run.path] = data = read_metrics(path, run.protocol, scale)
                                provenance.append({"file": run.path, **{k: data[k] for k in PROVENANCE_FIELDS if k in data},
                                                   **run_provenance(data), "deviations": "; ".join(deviations(data, run))})
                            value = _metric_value(read[run.path], path, run)
                            how[(part.id, row.id, col.name)] = "; ".join(deviations(read[run.path], run))
                    elif run.compute_key in compute:
                        entry = compute[run.compute_key]
                        value = compute_value(entry, run.metric, run.compute_key)
                        if value is not None and entry.get("verdict") in COMPUTE_VERDICTS:
                            compute_status[(row.id, col.name)] = COMPUTE_VERDICTS[entry["verdict"]]
                reproduced_by_row.setdefault(row.id, {})[col.name] = value
        for row in part.rows:
            for col in part.value_columns:
                cell = row.cells[col.name]
                value = reproduced_by_row.get(row.id, {}).get(col.name)
                run = runs.get((part.id, row.id, col.name))
                kind = row.kind
                if kind == "derived":
                    value = derived_value(part, row, col.name, {r: v.get(col.name) for r, v in reproduced_by_row.items()})
                elif kind == "quoted" and run is not None:
                    kind = "reproduce"  # a quoted row whose compute cell this suite counts
                status = compute_status.get((row.id, col.name)) or status_of(kind, value, cell.value, scale,
                                                                            spec.tolerance)
                delta = None if value is None or cell.value is None else value - cell.value
                text = _cell_text(cell.value, cell.legibility, value, delta, status)
                if how.get((part.id, row.id, col.name)) and value is not None:
                    text += f" [{how[(part.id, row.id, col.name)]}]"
                out.append(RenderedCell(part.id, row.id, col.name, cell.value, cell.legibility, value, delta,
                                        status, text))
    return out, provenance


def _clip_text(clip: dict) -> str:
    return f"{clip.get('num_frames')}x{clip.get('stride')}@{clip.get('crop_size')}"


def _clips(cfg) -> list[dict]:
    """Every `clip:` block of a method config."""
    if not isinstance(cfg, dict):
        return []
    return ([cfg["clip"]] if isinstance(cfg.get("clip"), dict) else []) + [
        c for key, value in cfg.items() if key != "clip" for c in _clips(value)]


def paper_clips(run: CellRun) -> list[dict]:
    """The clip the paper evaluates the cell's run at: the full-scale transfer clip with the
    variant's evaluation clip for the cell's dataset over it (MaCLR's 32x8 on UCF101), or, for a
    method whose config nests its clips differently, every clip of its full-scale config."""
    cfg = method_config(run.method, FULL_SCALE, run.variant)
    cls = method_class(run.method)
    try:
        base = cls.transfer_settings(cfg)["clip"]
    except KeyError:
        return _clips(cfg)
    return [{**base, **(cls.evaluation_clip(cfg, run.eval or "") or {})}]


def deviations(data: dict, run: CellRun) -> list[str]:
    """How a metrics file's run differs from the paper's stated protocol: its test views against
    the full-scale profile's (the papers' settings), its clip against every clip of the method's
    full-scale config, and the evaluation videos used against those the official annotations list."""
    out = []
    try:  # the recipe the full scale evaluates this checkpoint with: its method's own, or the shared one
        paper, _ = protocol_settings(load_scale(FULL_SCALE), run.protocol, recipe_owner(data), run.eval or "")
        views = f"{paper['temporal_views']}x{paper['spatial_views']}"
        if data.get("views") != views:
            out.append(f"views {data.get('views')}, paper {views}")
        clips = paper_clips(run)
    except (SuiteError, KeyError, OSError):
        clips = []
    clip = data.get("clip")
    key = ("num_frames", "stride", "crop_size")
    if isinstance(clip, dict) and clips and not any(all(clip.get(k) == c.get(k) for k in key) for c in clips):
        out.append(f"clip {_clip_text(clip)}, paper {' or '.join(sorted({_clip_text(c) for c in clips}))}")
    used, listed = data.get("eval_videos_used"), data.get("eval_videos_listed")
    if used is not None and listed and used < listed:
        out.append(f"{used} of {listed} listed videos")
    if data.get("stand_in"):  # pretrained on a stand-in for the paper's data (PretrainMethod.stand_in)
        out.append(str(data["stand_in"]))
    if data.get("eval_stand_in"):  # evaluated with a stand-in for the paper's input (detection's proposals)
        out.append(str(data["eval_stand_in"]))
    return out


def run_provenance(data: dict) -> dict:
    """The compact provenance of a metrics file (RUN_COLUMNS but `deviations`)."""
    init = data.get("initialisation") or {}
    packages = data.get("packages") or {}
    commit = str(data.get("eval_git_commit", data.get("git_commit", "")))[:10]
    return {"commit": commit + ("+dirty" if data.get("eval_git_dirty") else ""),
            "data": f"{str(data.get('eval_data_fingerprint', ''))[:12]} "
                    f"({data.get('eval_videos_used', '?')}/{data.get('eval_videos_listed') or '?'} videos)",
            "clip": _clip_text(data["clip"]) if isinstance(data.get("clip"), dict) else "",
            "views": f"{data.get('views', '')} {data.get('score_averaging', '')}".strip(),
            "init": init.get("kind", "") + (f" {init['sha256'][:12]}" if init.get("sha256") else ""),
            "seeds": f"{data.get('seed', '')}/{data.get('eval_seed', '')}",
            "packages": " ".join(f"{k} {v}" for k, v in packages.items() if v),
            "device": data.get("device", "")}


def _cell_text(paper, legibility, reproduced, delta, status) -> str:
    p = _paper_text(paper, legibility)
    if status == "quoted":
        return f"{p} (quoted)" if legibility != "not_reported" else "–"
    if legibility == "not_reported" and reproduced is None:
        return "–"
    if reproduced is None:
        return f"{p} / – ({status})"
    d = f"Δ {delta:+.1f}, " if delta is not None else ""
    return f"{p} / {_fmt(reproduced)} ({d}{status})"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(spec: Spec, cells: list[RenderedCell], provenance: list[dict], scale: str, date: str,
             not_run: dict[str, int] | None = None) -> str:
    by_key = {(c.part, c.row, c.column): c for c in cells}
    n_run = sum(c.reproduced is not None and c.status not in ("derived",) for c in cells)
    lines = [f"# {spec.title}", "", f"*{_md_escape(spec.caption)}*" if spec.caption else "", "",
             f"- paper: `{spec.paper}` (papers/{spec.source})",
             f"- scale: **{scale}**" + ("" if scale == FULL_SCALE else
                                       " — smoke-scale numbers test the pipeline; they are never compared with the paper"),
             f"- generated: {date}",
             f"- tolerance at full scale: ±{spec.tolerance:g}",
             f"- reproduced cells: {n_run} of {sum(c.status != 'quoted' for c in cells)} "
             f"(from {len(provenance)} metrics file(s))"]
    for key in PROVENANCE_FIELDS:
        values = sorted({str(p[key]) for p in provenance if key in p})
        if values:
            lines.append(f"- {key}: {', '.join(values)}")
    lines += ["", "Each cell: `paper / reproduced (Δ reproduced − paper, status)`. Status: `match` / `differs` "
              "(full scale, within / beyond tolerance), `smoke` (a smoke-scale run, not compared), `not run` "
              "(no run of this suite produced it), `quoted` (another paper's result, not reproduced), `derived` "
              "(the table's own Δ row, computed from reproduced rows). Compute cells (#params, FLOPs) are counted "
              "on the paper's full-size network and input at every scale, and their status is the verdict of "
              f"`{COMPUTE_CSV}` (see tables/compute.md). Paper marks: `†` reconstructed from the "
              "paper's prose (see the spec), `illegible` (garbled in print), `–` not reported.", ""]
    for part in spec.parts:
        if part.id or part.caption:
            lines += [f"## {_md_escape(part.caption or part.id)}", ""]
        header = part.label_columns + [c.name for c in part.value_columns]
        lines.append("| " + " | ".join(_md_escape(h) for h in header) + " |")
        lines.append("|" + "|".join(["---"] * len(part.label_columns) + ["---:"] * len(part.value_columns)) + "|")
        for row in part.rows:
            vals = [_md_escape(row.labels[c]) for c in part.label_columns]
            vals += [_md_escape(by_key[(part.id, row.id, c.name)].text) for c in part.value_columns]
            lines.append("| " + " | ".join(vals) + " |")
        lines.append("")
    if provenance:
        lines += ["## Runs", "", "Provenance of each metrics file: evaluation commit, data fingerprint (videos used / "
                  "listed in the official annotations), clip (frames x stride @ crop), test views and score averaging, "
                  "initialisation, pretraining / evaluation seed, packages, device, and how the run differs from the "
                  "paper's stated protocol (also shown in brackets in each cell it fills).", "",
                  "| " + " | ".join(("metrics file",) + RUN_COLUMNS) + " |", "|---|" + "---|" * len(RUN_COLUMNS)]
        for p in provenance:
            lines.append(f"| `{p['file']}` | " + " | ".join(_md_escape(p.get(k, "")) for k in RUN_COLUMNS) + " |")
        lines.append("")
    if not_run:
        lines += ["## Why cells are not run", ""]
        lines += [f"- {_md_escape(reason)} ({n} cell(s))" for reason, n in sorted(not_run.items())]
        lines.append("")
    return "\n".join(lines)


def long_frame(spec: Spec, cells: list[RenderedCell], scale: str) -> pd.DataFrame:
    rows = [{"table": spec.key, "part": c.part, "row": c.row, "column": c.column, "paper": c.paper,
             "legibility": c.legibility, "reproduced": c.reproduced,
             "delta": None if c.delta is None else round(c.delta, 4), "status": c.status, "scale": scale}
            for c in cells]
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def plot(spec: Spec, cells: list[RenderedCell], scale: str) -> bytes:
    """The PNG of paper vs reproduced numbers."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = [c for c in cells if c.reproduced is not None and c.paper is not None and c.status != "derived"]
    fig, ax = plt.subplots(figsize=(5, 5))
    if pts:
        xs, ys = [c.paper for c in pts], [c.reproduced for c in pts]
        lo, hi = min(xs + ys), max(xs + ys)
        pad = max(1.0, 0.05 * (hi - lo))
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=0.8, label="reproduced = paper")
        ax.scatter(xs, ys, s=18)
        for c in pts:
            ax.annotate(f"{c.row}/{c.column}", (c.paper, c.reproduced), fontsize=6, alpha=0.7)
        ax.legend(loc="upper left", fontsize=7)
    else:
        ax.text(0.5, 0.5, "no reproduced cells yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("paper")
    ax.set_ylabel(f"reproduced ({scale} scale)")
    ax.set_title(f"{spec.key}: paper vs reproduced ({len(pts)} cells)", fontsize=9)
    fig.tight_layout()
    buffer = BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()


def render(spec_path, scale, results, md=None, csv=None, png=None, root: Path = ROOT, date: str | None = None):
    """Render every output in memory, then write them: an error leaves the previous table as it was."""
    spec = load_spec(spec_path)
    cells, provenance = render_cells(spec, scale, results, root)
    date = date or datetime.date.today().isoformat()
    not_run: dict[str, int] = {}
    compute = read_compute_csv(root / COMPUTE_CSV) if has_compute_cells(spec) else {}
    for run in cell_runs(spec, scale, results, root):
        if not run.runnable:
            not_run[run.reason] = not_run.get(run.reason, 0) + 1
        elif run.path and not (root / run.path).exists():
            not_run["metrics file absent"] = not_run.get("metrics file absent", 0) + 1
        elif run.path is None and run.compute_key not in compute:
            reason = f"{run.column}: not counted (no key {run.compute_key} in {COMPUTE_CSV})"
            not_run[reason] = not_run.get(reason, 0) + 1
    outputs = {}
    if md:
        outputs[md] = markdown(spec, cells, provenance, scale, date, not_run).encode()
    if csv:
        outputs[csv] = long_frame(spec, cells, scale).to_csv(index=False).encode()
    if png:
        outputs[png] = plot(spec, cells, scale)
    for path, data in outputs.items():
        io.write_bytes(path, data)
    return cells


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spec", required=True, help="tables/specs/<paper>_<table>.yaml")
    ap.add_argument("--scale", required=True, help="scale profile the results come from (smoke, full, ...)")
    ap.add_argument("--results", help="results folder of that scale (default results/<scale>)")
    ap.add_argument("--md", help="Markdown output")
    ap.add_argument("--csv", help="long-form CSV output")
    ap.add_argument("--plot", help="PNG output: paper vs reproduced")
    args = ap.parse_args(argv)
    if not Path(args.spec).exists():
        ap.error(f"--spec: no such file {args.spec}")
    try:
        render(args.spec, args.scale, args.results or f"results/{args.scale}", args.md, args.csv, args.plot,
               root=Path.cwd())
    except SuiteError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
