"""protocols/split_average.py (HCML Table 7's three-split UCF101 average): the mean of the per-split
metrics files, each split's value and file recorded, differing provenance kept per split, and splits
that were not evaluated alike refused."""
import json

import pytest

from core.errors import MetricsError
from core.provenance import file_hash
from protocols.split_average import average_splits, main
from tables.metrics import PACKAGES, PROVENANCE_FIELDS


def split_metrics(split: int, top1: float, **over) -> dict:
    data = {k: f"same-{k}" for k in PROVENANCE_FIELDS}
    data.update({"scale": "smoke", "protocol": "finetune", "views": "2x1", "score_averaging": "softmax",
                 "initialisation": {"kind": "pretrained"}, "packages": {p: "1" for p in PACKAGES},
                 "clip": {"num_frames": 8}, "checkpoint_sha256": "abc", "top1": top1, "top5": 100.0,
                 "num_test_videos": 10 + split, "num_train_videos": 20, "eval_manifest_sha256": f"manifest{split}"})
    return data | over


def write_splits(tmp_path, values, **over):
    paths = []
    for split, top1 in enumerate(values, 1):
        path = tmp_path / f"ucf101_split{split}.json"
        path.write_text(json.dumps(split_metrics(split, top1, **over)))
        paths.append(path)
    return paths


def test_the_mean_of_three_splits_with_each_split_recorded(tmp_path):
    paths = write_splits(tmp_path, [30.0, 45.0, 60.0])
    out = average_splits(paths, "finetune", "smoke")
    assert out["top1"] == pytest.approx(45.0) and out["top5"] == 100.0
    assert out["num_test_videos"] == 11 + 12 + 13 and out["num_train_videos"] == 60
    assert out["eval_manifest_sha256"] == ["manifest1", "manifest2", "manifest3"]  # differs: one per split
    assert out["views"] == "2x1" and out["checkpoint_sha256"] == "abc"  # agrees: kept as is
    assert [s["top1"] for s in out["splits"]] == [30.0, 45.0, 60.0]
    assert [s["metrics_file"] for s in out["splits"]] == [str(p) for p in paths]
    assert out["splits"][1]["metrics_sha256"] == file_hash(paths[1])


def test_the_command_writes_a_file_of_the_same_protocol(tmp_path):
    out = tmp_path / "ucf101_3splits.json"
    main([*map(str, write_splits(tmp_path, [10.0, 20.0, 60.0])), "--protocol", "finetune", "--scale", "smoke",
          "--out", str(out)])
    written = json.loads(out.read_text())
    assert written["protocol"] == "finetune" and written["top1"] == pytest.approx(30.0)


def test_splits_evaluated_differently_are_refused(tmp_path):
    paths = write_splits(tmp_path, [30.0, 45.0, 60.0])
    other = json.loads(paths[2].read_text()) | {"views": "1x1"}
    paths[2].write_text(json.dumps(other))
    with pytest.raises(MetricsError, match="differ in 'views'"):
        average_splits(paths, "finetune", "smoke")
    with pytest.raises(MetricsError, match="two or more"):
        average_splits(paths[:1], "finetune", "smoke")
    with pytest.raises(MetricsError, match="'scale' is 'smoke', not 'full'"):
        average_splits(paths[:2], "finetune", "full")
