"""Every metrics file of the smoke DAG of MaCLR Table 1 carries its provenance (tables/metrics.py,
PROVENANCE_FIELDS), the table shows it, and `snakemake --report` writes one HTML file holding the
table. Runs after tests/test_smoke_dag.py, whose run it reuses (the snakemake call below then plans
nothing); on its own it runs the smoke DAG first."""
import base64
import json
import re
import subprocess
import sys
from importlib import metadata

import pandas as pd
import pytest

from core.errors import MetricsError
from core.provenance import file_hash
from tables.metrics import PACKAGES, PROVENANCE_FIELDS, check_provenance
from tables.runs import metrics_files
from tables.schema import load_spec
from tests.conftest import ROOT, run_env

TARGET = "tables/maclr_table1.md"


def snakemake(*args):
    return subprocess.run([sys.executable, "-m", "snakemake", TARGET, "--cores", "2", "--config", "scale=smoke",
                           "--quiet", "rules", *args], cwd=ROOT, env=run_env(), check=True, capture_output=True, text=True)


@pytest.fixture(scope="module")
def smoke_metrics():
    snakemake()
    files = metrics_files(load_spec(ROOT / "tables/specs/maclr_table1.yaml"), "smoke", "results/smoke")
    return {path: json.loads((ROOT / path).read_text()) for path in files}


def test_a_file_without_provenance_is_refused():
    with pytest.raises(MetricsError, match="eval_data_fingerprint.*packages.torch"):
        check_provenance({k: 1 for k in PROVENANCE_FIELDS if k != "eval_data_fingerprint"} | {"packages": {}}, "m.json")


@pytest.mark.smoke
def test_every_metrics_file_carries_each_provenance_field(smoke_metrics):
    assert len(smoke_metrics) == 20  # 10 runs x (UCF101, HMDB51)
    for path, m in smoke_metrics.items():
        check_provenance(m, path)
        assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?", m["git_commit"]), path  # the pretraining's commit
        assert re.fullmatch(r"[0-9a-f]{40}", m["eval_git_commit"]) and isinstance(m["eval_git_dirty"], bool), path
        manifest_path = ROOT / "results/smoke/manifests" / (path.rsplit("/", 1)[1].removesuffix(".json") + ".csv")
        manifest = pd.read_csv(manifest_path)
        assert m["eval_manifest_sha256"] == file_hash(manifest_path)
        assert m["eval_videos_used"] == len(manifest) <= m["eval_videos_listed"]
        assert re.fullmatch(r"[0-9a-f]{64}", m["eval_data_fingerprint"])
        assert set(m["clip"]) >= {"num_frames", "stride", "crop_size"} and re.fullmatch(r"\d+x\d+", m["views"])
        assert m["score_averaging"] == "softmax"  # the linear protocol averages softmax over views
        assert m["initialisation"] == {"kind": "scratch", "seed": m["seed"]}
        assert isinstance(m["seed"], int) and isinstance(m["eval_seed"], int) and m["scale"] == "smoke"
        assert m["motion_estimator"] in (None, "farneback", "frame_difference"), path
        assert set(PACKAGES) <= set(m["packages"]) and m["packages"]["torch"] == metadata.version("torch")
        assert m["device"].startswith(("cpu:", "cuda:"))
        assert re.fullmatch(r"[0-9a-f]{64}", m["checkpoint_sha256"])
    # The same evaluation data give the same fingerprint, whatever run was evaluated on it.
    for evaldata in ("ucf101_split1", "hmdb51_split1"):
        assert len({m["eval_data_fingerprint"] for p, m in smoke_metrics.items() if p.endswith(f"/{evaldata}.json")}) == 1


@pytest.mark.smoke
def test_table_shows_provenance_and_how_cells_differ_from_the_paper(smoke_metrics):
    md = (ROOT / TARGET).read_text()
    assert "## Runs" in md
    fingerprints = {m["eval_data_fingerprint"] for m in smoke_metrics.values()}
    assert all(f in md for f in fingerprints)  # the header names the data's fingerprint in full
    # The smoke clips are not the paper's clip of the cell (the Visual pathway's 8x8, M-only's 16x4): each cell says so.
    assert re.search(r"\(Δ [-+]\d+\.\d, smoke\) \[clip \d+x\d+@32, paper 8x8@224\]", md)
    assert re.search(r"\(Δ [-+]\d+\.\d, smoke\) \[clip \d+x\d+@32, paper 16x4@224\]", md)


@pytest.mark.smoke
def test_report_is_one_html_file_holding_the_table(smoke_metrics, tmp_path):
    report = tmp_path / "report.html"
    snakemake("--report", str(report))
    html = report.read_text()
    assert report.stat().st_size > 10_000 and "<html" in html.lower()
    # Snakemake embeds each report item as base64 data: decode them and find the table.
    blobs = [base64.b64decode(b + "=" * (-len(b) % 4)) for b in re.findall(r"base64,([A-Za-z0-9+/=]+)", html)]
    table = (ROOT / TARGET).read_bytes()
    assert any(table.strip() in b for b in blobs)
    assert html.count("curve.png") >= 10  # the training curve of each of the 10 pretraining runs
