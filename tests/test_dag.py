"""Dry runs (`snakemake -n`) of every table target: the DAG resolves at smoke and at full scale.

Fast (a few seconds): nothing runs, `--nolock` so that a run in progress does not block the check.
"""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from datasets.sources.layout import required_paths
from datasets.sources.registry import DATASETS

ROOT = Path(__file__).resolve().parent.parent
SPEC_TARGETS = sorted(f"tables/{p.stem}.md" for p in (ROOT / "tables" / "specs").glob("*.yaml"))


def dry_run(*args: str, quiet: str | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--quiet", *([quiet] if quiet else []), "-n", "--nolock", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def _failure(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def job_counts(output: str) -> dict[str, int]:
    """The first "Job stats" table of a dry run's output: rule -> number of jobs."""
    counts: dict[str, int] = {}
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("Job stats"))
    for line in lines[start + 3:]:
        m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s+(\d+)\s*", line)
        if not m or m.group(1) == "total":
            break
        counts[m.group(1)] = int(m.group(2))
    return counts


def test_every_table_target_resolves_at_smoke_scale():
    assert len(SPEC_TARGETS) >= 30, SPEC_TARGETS
    targets = [*SPEC_TARGETS, "tables/audit.md", "tables/compute.md"]
    proc = dry_run(*targets)
    if proc.returncode != 0:  # name the targets that fail, one dry run each
        failing = [t for t in targets if dry_run(t).returncode != 0]
        pytest.fail(f"dry run fails for {failing}:\n{_failure(proc)}")


def test_mcl_table3_depends_on_compute_csv():
    """A spec with compute cells reads results/compute/compute.csv, made by rule compute."""
    proc = dry_run("tables/mcl_table3.md", quiet="rules")
    assert proc.returncode == 0, _failure(proc)
    plan = dry_run("tables/mcl_table3.md", "--forcerun", "compute", quiet="rules")
    assert plan.returncode == 0, _failure(plan)
    counts = job_counts(plan.stdout + plan.stderr)
    assert counts.get("compute") == 1 and counts.get("table") == 1, counts


def empty_layout(data_root: Path, datasets: list[str]) -> None:
    """The folders and (empty) annotation files that the DAG requires of each dataset at full scale."""
    for dataset in datasets:
        root = data_root / DATASETS[dataset].directory
        for rel in required_paths(dataset):
            path = root / rel.replace("*", "fixture")
            if rel.endswith("/"):
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()


def test_maclr_table1_at_full_scale_plans_every_pretraining_and_probe(tmp_path):
    """MaCLR Table 1 at full scale: 10 pretrainings (the ablation variants on K400-mini and K400)
    and 20 linear probes (each on UCF101 and HMDB51 split 1)."""
    empty_layout(tmp_path, ["ucf101_split1", "hmdb51_split1", "k400"])
    before = sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    proc = dry_run("tables/maclr_table1.md", "--config", "scale=full", f"data_root={tmp_path}", quiet="rules")
    assert proc.returncode == 0, _failure(proc)
    counts = job_counts(proc.stdout + proc.stderr)
    assert counts.get("pretrain") == 10, counts
    assert counts.get("evaluate") == 20, counts
    assert sorted((p, p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before  # a dry run writes nothing under the data root


def test_profiles_define_the_motion_inputs_the_rules_read_full_values_cited():
    """datasets/motion_inputs.smk reads `motion_inputs:` of the scale profile: both profiles define
    the same keys, and each full-scale value cites the paper or says it is not in the paper."""
    import yaml

    smoke, full = (yaml.safe_load((ROOT / "config" / "scales" / f"{s}.yaml").read_text())["motion_inputs"]
                   for s in ("smoke", "full"))
    assert set(smoke) == set(full) >= {"tvl1_short_side", "tvl1_store_flow", "mv_grid"}
    text = (ROOT / "config" / "scales" / "full.yaml").read_text()
    block = text[text.index("\nmotion_inputs:"):].split("\n\n")[0].splitlines()[1:]
    uncited, pending = [], []
    for line in block:
        pending.append(line)
        key = re.match(r"\s{2}(\w+):", line)
        if key:
            if not re.search(r"§|Sec\.|Table \d|not in the paper", " ".join(pending)):
                uncited.append(key.group(1))
            pending = []
    assert not uncited, f"config/scales/full.yaml motion_inputs without a citation: {uncited}"
