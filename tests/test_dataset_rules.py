"""The dataset and motion rules run for real under Snakemake at smoke scale, in a temporary copy
of the repository's tracked files (so results/smoke of the working tree is never touched):
fixture -> manifest (SSv2, UCF101 split 1, AVA val) -> AVA boxes, UCF101 1 % low-shot subset,
SSv2 mpeg4_gop12 transcode -> compressed-domain motion cache."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from datasets.sources.fixtures_extra import BAD
from tests.conftest import repository_copy

REPO = Path(__file__).resolve().parents[1]
TARGETS = [
    "results/smoke/manifests/ssv2.csv",
    "results/smoke/manifests/ava_val.boxes.csv",
    "results/smoke/manifests/ucf101_lowshot_1.csv",
    "results/smoke/motion/compressed/_summary_ssv2.json",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    work = repository_copy(tmp_path_factory.mktemp("repo"))
    proc = subprocess.run([sys.executable, "-m", "snakemake", *TARGETS, "--cores", "2", "--quiet"],
                          cwd=work, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return work / "results" / "smoke"


def test_ssv2_manifest_and_quarantine(run):
    manifest = pd.read_csv(run / "manifests/ssv2.csv", dtype={"video_id": str})
    quarantine = pd.read_csv(run / "manifests/ssv2.quarantine.csv", dtype={"video_id": str})
    assert len(manifest) == 9 and (manifest["num_frames"] == 30).all()  # 3 classes x 3 videos
    assert sorted(quarantine["video_id"]) == sorted(BAD["ssv2"])  # missing, empty, truncated, short
    reasons = dict(zip(quarantine["video_id"], quarantine["reason"]))
    assert "not found" in reasons["900001"] and "empty" in reasons["900002"]
    assert reasons["900004"].startswith("too short")


def test_ava_boxes(run):
    manifest = pd.read_csv(run / "manifests/ava_val.csv", dtype={"video_id": str})
    boxes = pd.read_csv(run / "manifests/ava_val.boxes.csv", dtype={"video_id": str})
    assert len(boxes) and set(boxes["video_id"]) <= set(manifest["video_id"])
    fps = dict(zip(manifest["video_id"], manifest["fps"]))
    assert ((boxes["frame"] >= 0) & (boxes["frame"] < boxes["video_id"].map(
        dict(zip(manifest["video_id"], manifest["num_frames"]))))).all()
    assert all(fps[v] > 0 for v in boxes["video_id"])
    assert {"x1", "y1", "x2", "y2", "action_id", "person_id", "frame"} <= set(boxes.columns)


def test_ucf101_lowshot_1(run):
    parent = pd.read_csv(run / "manifests/ucf101_split1.csv")
    sub = pd.read_csv(run / "manifests/ucf101_lowshot_1.csv")
    train = sub[sub["split"] == "train"]
    assert train["label"].value_counts().to_dict() == {c: 1 for c in range(5)}  # 1 video per class
    assert len(sub[sub["split"] == "test"]) == (parent["split"] == "test").sum()
    assert set(train["video_id"]) <= set(parent["video_id"])


def test_compressed_summary(run):
    summary = json.loads((run / "motion/compressed/_summary_ssv2.json").read_text())
    transcode = json.loads((run / "transcode/mpeg4_gop12/ssv2/_summary.json").read_text())
    assert transcode["transcoded"] == 9 and transcode["retimed_variable_frame_rate"] == []
    assert summary["kind"] == "compressed"
    assert summary["videos"] == summary["extracted"] == 9 and summary["failed"] == []
    assert summary["frames_extracted"] == 9 * 30 and summary["fps_per_core"] > 0
    assert summary["variable_frame_rate"] == []
    assert len(list((run / "motion/compressed/ssv2").glob("*.arrays"))) == 9
