"""`python -m datasets.fingerprint`: videos present / listed / quarantined per dataset, the missing
ids, and a fingerprint that is stable across copies and sees a changed set of videos."""
import json
import shutil
import subprocess
import sys

import pytest

from datasets.sources.fixtures import make_kinetics400, make_ucf101
from tests.conftest import ROOT, run_env


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    small = {"frames": 8, "height": 24, "width": 32, "fps": 10, "num_classes": 2}
    make_ucf101(root / "UCF101", {**small, "videos_per_class": 3}, seed=0)
    make_kinetics400(root / "Kinetics400", {**small, "train_per_class": 3, "val_per_class": 1, "bad_files": True}, seed=0)
    return root


def fingerprints(data_root, out, *datasets):
    done = subprocess.run([sys.executable, "-m", "datasets.fingerprint", "--config", "scale=full", f"data_root={data_root}",
                           "--out", str(out), *(("--datasets", *datasets) if datasets else ())],
                          cwd=ROOT, env=run_env(), capture_output=True, text=True, check=True)
    return {r["dataset"]: r for r in json.loads(out.read_text())["datasets"]}, done.stdout


def test_fixtures_report_present_listed_and_missing(data_root, tmp_path):
    reports, stdout = fingerprints(data_root, tmp_path / "f.json")
    assert set(reports) == {"ucf101_split1", "ucf101_split2", "ucf101_split3", "k400"}  # the folders that exist
    ucf = reports["ucf101_split1"]
    assert ucf["present"] == ucf["listed"] == 6 and ucf["missing_ids"] == []
    k400 = reports["k400"]  # the fixture lists one video whose file it does not write
    assert k400["listed"] == k400["present"] + 1 and len(k400["missing_ids"]) == 1
    assert k400["missing_ids"][0] in stdout and k400["fingerprint"] in stdout
    assert k400["quarantined"] is None  # not prepared under results/full


def test_incomplete_copy_names_missing_ids_and_changes_fingerprint(data_root, tmp_path):
    before, _ = fingerprints(data_root, tmp_path / "a.json", "ucf101_split1")
    copy = tmp_path / "copy"
    shutil.copytree(data_root, copy)
    same, _ = fingerprints(copy, tmp_path / "b.json", "ucf101_split1")
    assert same["ucf101_split1"]["fingerprint"] == before["ucf101_split1"]["fingerprint"]  # no paths, no mtimes
    removed = sorted((copy / "UCF101" / "UCF-101").rglob("*.avi"))[:2]
    for video in removed:
        video.unlink()
    after, stdout = fingerprints(copy, tmp_path / "c.json", "ucf101_split1")
    report = after["ucf101_split1"]
    assert report["missing_ids"] == sorted(v.stem for v in removed)
    assert report["present"] == report["listed"] - 2
    assert report["fingerprint"] != before["ucf101_split1"]["fingerprint"]
    assert all(v.stem in stdout for v in removed)
