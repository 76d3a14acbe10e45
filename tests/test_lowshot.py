"""Low-shot UCF101 subsets (datasets/manifests/lowshot.py): nested, class-balanced, seeded."""
import numpy as np
import pandas as pd
import pytest

from datasets.manifests.lowshot import PERCENTS, lowshot_subset, main


def manifest(per_class=(95, 94, 120, 3), test_per_class=2):
    rows = []
    for label, n in enumerate(per_class):
        rows += [{"video_id": f"v{label}_{i:03d}", "label": label, "split": "train"} for i in range(n)]
        rows += [{"video_id": f"t{label}_{i}", "label": label, "split": "test"} for i in range(test_per_class)]
    return pd.DataFrame(rows).sample(frac=1, random_state=0)  # row order must not matter


def train_ids(df):
    return set(df[df["split"] == "train"]["video_id"])


def test_nested_balanced_and_one_per_class_at_1_percent():
    m = manifest()
    subsets = {p: lowshot_subset(m, p, seed=0) for p in PERCENTS}
    for small, large in zip(PERCENTS, PERCENTS[1:]):
        assert train_ids(subsets[small]) <= train_ids(subsets[large])
    counts = subsets[1][subsets[1]["split"] == "train"].groupby("label").size()
    assert counts.tolist() == [1, 1, 1, 1]  # MaCLR: "1% of its training data (1 video per class)"
    c20 = subsets[20][subsets[20]["split"] == "train"].groupby("label").size()
    assert c20.tolist() == [19, 19, 24, 1]
    assert train_ids(subsets[100]) == train_ids(m)
    for s in subsets.values():
        assert (s["split"] == "test").sum() == 8  # the test split is untouched


def test_seeded():
    m = manifest()
    assert train_ids(lowshot_subset(m, 5, seed=3)) == train_ids(lowshot_subset(m.sample(frac=1, random_state=1), 5, seed=3))
    assert train_ids(lowshot_subset(m, 5, seed=3)) != train_ids(lowshot_subset(m, 5, seed=4))


def test_bad_percentage_and_cli(tmp_path):
    with pytest.raises(ValueError, match="percentage"):
        lowshot_subset(manifest(), 0, seed=0)
    m = manifest()
    m.to_csv(tmp_path / "p.csv", index=False)
    main(["--parent", str(tmp_path / "p.csv"), "--pct", "5", "--out", str(tmp_path / "o.csv")])
    assert len(pd.read_csv(tmp_path / "o.csv")) == len(lowshot_subset(m, 5, seed=0))
