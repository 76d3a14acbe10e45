"""Parsers of SSv2, SSv1, Diving48, VidSitu and AVA on generated fixtures, bad inputs and real AVA files."""
import json
from pathlib import Path

import pytest

from core.config import load_scale
from core.errors import AnnotationError, MissingInputError, SuiteError
from datasets.sources import fixtures_extra as fx
from datasets.sources.parsers import PARSERS
from datasets.sources.parsers import ava
from datasets.manifests.manifest import entries_for, prepare

REAL_AVA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ava-format"
SMOKE_FIXTURES = load_scale("smoke")["fixtures"]
PROFILE = {"preparation": {"min_frames": 24, "verify_decode": True, "strict": False}}
SMALL = {"num_classes": 2, "videos_per_class": 2, "segments": 3, "videos": 3, "frames": 24, "height": 32, "width": 48}
DATASETS = {"ssv2": "ssv2", "ssv1": "ssv1", "diving48": "diving48", "vidsitu": "vidsitu", "ava": "ava_train"}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("extra")
    for key in DATASETS:
        # VidSitu's rows are its segments' 2-second events: 5 x 24 frames at 12 fps
        small = {**SMALL, "frames": 120, "fps": 12} if key == "vidsitu" else SMALL
        fx.make(key, base / key, {**SMOKE_FIXTURES[key], **small}, seed=1)
    return base


@pytest.mark.parametrize("key", sorted(DATASETS))
def test_fixture_prepares_and_quarantines_each_bad_input_by_name(roots, key):
    dataset = DATASETS[key]
    manifest, quarantine = prepare(dataset, roots / key, PROFILE)
    assert set(quarantine["video_id"]) == set(fx.BAD[key])
    assert not set(manifest["video_id"]) & set(fx.BAD[key])
    assert (manifest["num_frames"] >= 24).all() and len(manifest) > 0
    reasons = " ".join(quarantine["reason"]).lower()
    assert "not found" in reasons and ("short" in reasons or key == "ssv1")


def test_quarantine_reasons_name_the_failure(roots):
    _, q = prepare("diving48", roots / "diving48", PROFILE)
    reasons = dict(zip(q["video_id"], q["reason"]))
    assert "not found" in reasons["bad_missing"]
    assert "empty" in reasons["bad_empty"]
    assert "truncated" in reasons["bad_truncated"] or "decod" in reasons["bad_truncated"]
    assert "too short" in reasons["bad_short"]
    with pytest.raises(SuiteError, match="strict"):
        prepare("diving48", roots / "diving48", {"preparation": {**PROFILE["preparation"], "strict": True}})


def test_labels_follow_the_official_class_lists(roots):
    m, _ = prepare("ssv2", roots / "ssv2", PROFILE)
    labels = json.loads((roots / "ssv2" / "labels" / "labels.json").read_text())
    assert all(labels[row.label_name] == str(row.label) for row in m.itertuples())
    assert set(m["split"]) == {"train", "val"}
    m1, q1 = prepare("ssv1", roots / "ssv1", PROFILE)
    assert (m1["fps"] == 12.0).all() and "numbering" in " ".join(q1["reason"])
    d, _ = prepare("diving48", roots / "diving48", PROFILE)
    assert set(d["split"]) == {"train", "test"} and d["label_name"].str.count(" / ").eq(3).all()


def test_vidsitu_one_row_per_event_with_majority_verb(roots):
    m, _ = prepare("vidsitu", roots / "vidsitu", PROFILE)
    assert (m.groupby("path").size() == 5).all()
    assert m["video_id"].str.match(r".*_Ev[1-5]$").all()
    val = m[m["split"] == "val"]
    anns = json.loads((roots / "vidsitu" / "vidsitu_annotations" / "vseg_ann_files" / "vsann_valid_lb.json").read_text())
    # Ev5 was annotated (x, verb0, x) by three annotators: the majority verb is x
    assert val[val["video_id"].str.endswith("_Ev5")]["label_name"].iloc[0] == anns[0]["Ev5"]["VerbID"]
    # each event is its 2 seconds of the segment video: 24 frames from frame 24 (k - 1) at 12 fps
    assert (m["num_frames"] == 24).all()
    assert (m["start_frame"] == 24 * (m["video_id"].str[-1].astype(int) - 1)).all()
    # validation events carry the 10 evaluation verbs of vinfo_valid_lb.json, as class indices
    vinfo = json.loads((roots / "vidsitu" / "vidsitu_annotations" / "vinfo_files" / "vinfo_valid_lb.json").read_text())
    names = sorted(set(m[m["split"] == "train"]["label_name"]))
    first = val[val["video_id"].str.endswith("_Ev1")].iloc[0]
    expected = [names.index(v) if v in names else -1 for v in vinfo[0]["vbid_lst"]["Ev1"]]
    assert [int(v) for v in first["label_set"].split(";")] == expected and len(expected) == 10
    assert m[m["split"] == "train"]["label_set"].isna().all()


@pytest.mark.parametrize("key", sorted(DATASETS))
def test_manifest_entries_fall_back_to_the_extra_parsers(roots, key):
    """datasets.manifests.manifest parses every dataset: the extra ones through datasets.sources.parsers.PARSERS."""
    dataset = DATASETS[key]
    assert entries_for(dataset, roots / key) == PARSERS[dataset](roots / key)


def test_unknown_dataset_names_the_known_parsers(tmp_path):
    with pytest.raises(SuiteError, match="no official-layout parser for dataset 'nope'.*diving48"):
        entries_for("nope", tmp_path)


def test_manifest_cli_then_ava_boxes_step(roots, tmp_path, monkeypatch):
    """`python -m datasets.manifests.manifest` writes AVA's manifest; `datasets.sources.parsers.prepare` its boxes."""
    import pandas as pd

    from datasets.manifests import manifest as manifest_cli
    from datasets.sources.parsers import prepare as boxes_cli

    monkeypatch.setattr(manifest_cli, "load_scale", lambda scale: PROFILE)
    out, q, boxes = tmp_path / "ava_train.csv", tmp_path / "ava_train.quarantine.csv", tmp_path / "ava_train.boxes.csv"
    manifest_cli.main(["--dataset", "ava_train", "--root", str(roots / "ava"), "--out", str(out), "--quarantine", str(q)])
    m = pd.read_csv(out, dtype={"video_id": str})
    assert set(pd.read_csv(q, dtype={"video_id": str})["video_id"]) == set(fx.BAD["ava"])
    boxes_cli.main(["--dataset", "ava_train", "--root", str(roots / "ava"), "--manifest", str(out), "--out", str(boxes)])
    b = pd.read_csv(boxes, dtype={"video_id": str})
    assert len(b) and set(b["video_id"]) <= set(m["video_id"])
    assert b["action_id"].isin(ava.AVA_60_CLASS_IDS).all() and (b["frame"] >= 0).all()


def test_fixture_sizes_come_only_from_the_scale_profile(tmp_path):
    """No size defaults in code: every extra fixture's sizes are in config/scales/smoke.yaml, and a
    size missing from the profile is an error naming it."""
    assert not hasattr(fx, "DEFAULTS")
    assert set(fx.MAKERS) <= set(SMOKE_FIXTURES)
    cfg = {k: v for k, v in SMOKE_FIXTURES["diving48"].items() if k != "fps"}
    with pytest.raises(ValueError, match="fixtures.diving48: missing size.*fps"):
        fx.make("diving48", tmp_path / "d", cfg)


def test_ava_fixture_boxes_exclusions_and_60_classes(roots):
    assert len(ava.AVA_60_CLASS_IDS) == 60
    boxes, label_map, counts = ava.load_split(roots / "ava", "train")
    assert set(label_map) == ava.AVA_60_CLASS_IDS
    assert counts["outside_label_map_rows"] == 1 and counts["excluded_keyframe_rows"] > 0
    assert boxes["action_id"].isin(ava.AVA_60_CLASS_IDS).all()
    kf = ava.keyframes(boxes, fps=5)
    assert (kf["frame"] == (kf["timestamp"] - 900) * 5).all()


@pytest.mark.parametrize("key,relpath,content,match", [
    ("ssv2", "labels/train.json", '[{"id": "1"}]', "item 0"),
    ("ssv2", "labels/validation.json", "[{", "not valid JSON"),
    ("ssv1", "something-something-v1-train.csv", "12;No such class\n", "something-something-v1-train.csv:1"),
    ("diving48", "Diving48_train.json", '[{"vid_name": "a", "label": 99, "start_frame": 0, "end_frame": 5}]', "label 99"),
    ("vidsitu", "vidsitu_annotations/vseg_ann_files/vsann_train_lb.json", '[{"Ev1": {}}]', "vsann_train_lb.json"),
    ("ava", "annotations/ava_train_v2.2.csv", "vid,0902,0.1,0.1\n", "ava_train_v2.2.csv:1"),
])
def test_malformed_annotations_are_errors_naming_the_file(tmp_path, roots, key, relpath, content, match):
    import shutil

    root = tmp_path / key
    shutil.copytree(roots / key, root)
    (root / relpath).write_text(content)
    with pytest.raises(AnnotationError, match=match):
        PARSERS[DATASETS[key]](root)


def test_missing_annotation_file_is_named(tmp_path):
    with pytest.raises(MissingInputError, match="labels.json"):
        PARSERS["ssv2"](tmp_path)


@pytest.mark.real_data
def test_ava_parser_on_real_files():
    if not REAL_AVA.exists():
        pytest.skip("shared AVA-format samples absent")
    d = REAL_AVA / "ava_dataset"
    boxes = ava.read_boxes(d / "ava_sample.csv")
    assert len(boxes) == 8 and list(boxes.columns) == ava.BOX_COLUMNS
    assert boxes["timestamp"].tolist()[:3] == [902, 902, 902]
    label_map = ava.parse_label_map(d / "action_list.txt")
    assert label_map == {12: "action1", 17: "action2", 79: "action3", 80: "action3"}
    excluded = ava.read_excluded(d / "ava_excluded_timestamps_sample.csv")
    assert excluded == {("0f39OWEqJ24", 903), ("_-Z6wFjXtGQ", 902)}
    kept, counts = ava.filter_boxes(boxes, excluded, label_map)
    assert counts == {"rows": 8, "excluded_keyframe_rows": 5, "outside_label_map_rows": 0, "kept_rows": 3}
    assert set(kept["action_id"]) == {12, 17, 79}
    gt = ava.read_boxes(REAL_AVA / "eval_detection" / "gt.csv")
    assert len(gt) == 12 and set(gt["action_id"]) <= set(ava.parse_label_map(REAL_AVA / "eval_detection" / "action_list.txt"))
    with pytest.raises(AnnotationError, match="pred.csv:1"):  # a prediction file has a score, not a person id
        ava.read_boxes(REAL_AVA / "eval_detection" / "pred.csv")


@pytest.mark.parametrize("split", [2, 3])
def test_ucf101_and_hmdb51_fixture_splits_2_and_3_parse(tmp_path, split):
    from datasets.sources.fixtures import make_hmdb51, make_ucf101
    from datasets.sources.official import parse_hmdb51, parse_ucf101

    cfg = {"num_classes": 2, "videos_per_class": 3, "frames": 4, "height": 16, "width": 16, "fps": 25}
    make_ucf101(tmp_path / "UCF101", cfg, seed=0)
    make_hmdb51(tmp_path / "HMDB51", cfg, seed=0)
    for entries in (parse_ucf101(tmp_path / "UCF101", split), parse_hmdb51(tmp_path / "HMDB51", split)):
        assert {e.split for e in entries} == {"train", "test"}
        assert all((tmp_path / ("UCF101" if e.path.startswith("UCF-101") else "HMDB51") / e.path).exists() for e in entries)
