"""Fixture datasets in the official layouts, their parsers, manifests with quarantine, K400-mini."""
import numpy as np
import pandas as pd
import pytest

from core.errors import AnnotationError, MissingInputError
from datasets.sources.fixtures import make_hmdb51, make_kinetics400, make_ucf101
from datasets.manifests.manifest import build_manifest, entries_for
from datasets.sources.official import parse_hmdb51, parse_kinetics400, parse_ucf101
from datasets.manifests.subsets import k400_mini
from datasets.sources.synthetic import class_patterns, render_frames

TINY = {"frames": 12, "height": 24, "width": 32, "fps": 10}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("fixtures")
    make_ucf101(base / "UCF101", {**TINY, "num_classes": 3, "videos_per_class": 4}, seed=0)
    make_hmdb51(base / "HMDB51", {**TINY, "num_classes": 3, "videos_per_class": 4}, seed=0)
    report = make_kinetics400(base / "Kinetics400", {**TINY, "num_classes": 3, "train_per_class": 4, "val_per_class": 1, "bad_files": True}, seed=0)
    return base, report


def test_ucf101_layout_and_three_splits(roots):
    base, _ = roots
    assert (base / "UCF101/UCF-101/ApplyEyeMakeup").is_dir()
    assert (base / "UCF101/ucfTrainTestlist/classInd.txt").read_text().splitlines()[0] == "1 ApplyEyeMakeup"
    for split in (1, 2, 3):
        entries = parse_ucf101(base / "UCF101", split)
        assert len(entries) == 12 and {e.split for e in entries} == {"train", "test"}
        assert all(e.path.startswith("UCF-101/") and e.path.endswith(".avi") for e in entries)
        assert all(e.path.split("/")[1] == e.label_name for e in entries)
    split1 = {e.video_id for e in parse_ucf101(base / "UCF101", 1) if e.split == "test"}
    assert all(int(v.split("_g")[1][:2]) <= 7 for v in split1)  # UCF101: groups 1-7 test in split 1


def test_hmdb51_tags_and_splits(roots):
    base, _ = roots
    lines = (base / "HMDB51/testTrainMulti_7030_splits/brush_hair_test_split1.txt").read_text().split("\n")
    assert {line.split()[1] for line in lines if line} <= {"0", "1", "2"}
    tests = [{e.video_id for e in parse_hmdb51(base / "HMDB51", s) if e.split == "test"} for s in (1, 2, 3)]
    assert tests[0] != tests[1]
    labels = {e.label_name: e.label for e in parse_hmdb51(base / "HMDB51", 1)}
    assert labels == {"brush_hair": 0, "cartwheel": 1, "catch": 2}


def test_kinetics_names_and_csv_columns(roots):
    base, _ = roots
    header = (base / "Kinetics400/annotations/train.csv").read_text().splitlines()[0]
    assert header == "label,youtube_id,time_start,time_end,split"
    entries = parse_kinetics400(base / "Kinetics400")
    name = entries[0].path.split("/")[1]
    ytid, start, end = name[:11], name[12:18], name[19:25]
    assert len(ytid) == 11 and start.isdigit() and end.isdigit() and name.endswith(".mp4")


def test_bad_videos_are_quarantined_by_name_not_dropped(roots):
    base, report = roots
    root = base / "Kinetics400"
    manifest, quarantine = build_manifest(entries_for("k400", root), root, min_frames=8, verify=True)
    bad = {b["path"]: b["kind"] for b in report["bad_files"]}
    assert set(quarantine["path"]) == set(bad)
    reasons = dict(zip(quarantine["path"], quarantine["reason"]))
    by_kind = {kind: reasons[path] for path, kind in bad.items()}
    assert "not found" in by_kind["missing"]
    assert "too short" in by_kind["too_short"]
    assert by_kind["truncated"]  # undecodable or truncated, with the decoder's message
    assert len(manifest) + len(quarantine) == len(entries_for("k400", root))
    assert manifest["num_frames"].eq(12).all()


def test_malformed_annotation_line_names_file_and_line(tmp_path):
    lists = tmp_path / "ucfTrainTestlist"
    lists.mkdir()
    (lists / "classInd.txt").write_text("1 Archery\n")
    (lists / "trainlist01.txt").write_text("Archery/v_Archery_g08_c01.avi 1\nBowling/v_Bowling_g08_c01.avi 2\n")
    (lists / "testlist01.txt").write_text("")
    with pytest.raises(AnnotationError, match=r"trainlist01.txt:2"):
        parse_ucf101(tmp_path, 1)
    with pytest.raises(MissingInputError, match="trainlist02"):
        parse_ucf101(tmp_path, 2)


def test_k400_mini_is_seeded_and_proportional():
    parent = pd.DataFrame({"video_id": [f"v{i:03d}" for i in range(40)], "split": ["train"] * 36 + ["val"] * 4})
    a = k400_mini(parent, size=None, fraction=0.25, seed=0)
    b = k400_mini(parent, size=None, fraction=0.25, seed=0)
    assert len(a) == 9 and a["video_id"].tolist() == b["video_id"].tolist()
    assert set(a["video_id"]) <= set(parent["video_id"][:36])
    assert k400_mini(parent, size=None, fraction=0.25, seed=1)["video_id"].tolist() != a["video_id"].tolist()


def test_classes_differ_in_motion_not_appearance():
    """Two videos of one class share their motion, not their look; two classes differ in motion."""
    patterns = class_patterns(4)
    assert len(set(patterns)) == 4
    a, b = render_frames(patterns[0], 4, 24, 32, seed=1), render_frames(patterns[0], 4, 24, 32, seed=2)
    assert np.abs(a[0].astype(int) - b[0].astype(int)).mean() > 20  # different backgrounds and objects
