"""The HCML tables' DAG at smoke scale: `snakemake tables/hcml_table1.md ... tables/hcml_table7.md` in a
copy of the repository, from fixture generation (UCF101, Kinetics-400, Something-V1 frame folders,
Something-V2) through the seeded random starts of HCML's variants, the two K400 pretraining runs,
the joint_train, efficacy, knn_motion and fine-tuning evaluations (Table 7's on each UCF101 split, then
their average) to the rendered tables; then a regression check of the reproduced numbers.

Smoke numbers test the pipeline, not the paper. The regression tolerance of an accuracy cell is one
test video of the evaluation set behind it; of an efficacy score, the score's change when one test
video flips."""
import json
from pathlib import Path

import pytest

from tests.smoke_tables import (RESULTS, assert_every_row_has_a_smoke_value, cell, check_regression, dag_in_copy,
                                eval_cells)

TABLES = [f"hcml_table{i}" for i in range(1, 8)]


@pytest.fixture(scope="module")
def hcml_dag(tmp_path_factory):
    """(repository copy, {table: long-form CSV}) after the HCML tables' smoke DAG ran once."""
    return dag_in_copy(tmp_path_factory, "hcml", TABLES)


def own_cells(repo: Path):
    return eval_cells(repo, TABLES, ("hcml",))


@pytest.mark.smoke
def test_every_hcml_row_has_a_smoke_value_from_its_metrics_file(hcml_dag):
    repo, tables = hcml_dag
    assert_every_row_has_a_smoke_value(repo, tables, TABLES, ("hcml",))


@pytest.mark.smoke
def test_table7_is_the_mean_of_the_three_split_evaluations(hcml_dag):
    """A.2: UCF101 top-1 averaged over the three splits; each split's file is one fine-tuning run."""
    repo, t = hcml_dag
    folder = repo / RESULTS / "eval/hcml/pmb_selfsup_r2plus1d101/k400/finetune"
    average = json.loads((folder / "ucf101_3splits.json").read_text())
    splits = [json.loads((folder / f"ucf101_split{i}.json").read_text()) for i in (1, 2, 3)]
    assert [s["metrics_file"].rsplit("/", 1)[1] for s in average["splits"]] == [f"ucf101_split{i}.json" for i in (1, 2, 3)]
    assert average["top1"] == pytest.approx(sum(s["top1"] for s in splits) / 3)
    assert len(set(average["eval_manifest_sha256"])) == 3  # three different test sets
    assert cell(t["hcml_table7"], "", "ours_r2plus1d101", "UCF-101")["reproduced"] == pytest.approx(average["top1"], abs=0.01)
    # Table 4's split-1 cell of the same run reads the same split-1 file
    assert cell(t["hcml_table4"], "", "ours_r2plus1d101_k400", "Accuracy")["reproduced"] == pytest.approx(splits[0]["top1"], abs=0.01)


@pytest.mark.smoke
def test_one_joint_training_serves_tables_2_3_and_6(hcml_dag):
    """Table 2's single-clip cells and Table 3's / Table 6's multi-view cells read one metrics file per run."""
    repo, t = hcml_dag
    metrics = json.loads((repo / RESULTS / "eval/hcml/pmb_selfsup/none/joint_train/k400.json").read_text())
    assert metrics["single_clip_views"] == "1x1" and metrics["views"] == "2x1"
    assert cell(t["hcml_table2"], "", "pmb_selfsup_r2d", "Kinetics-400 top-1")["reproduced"] == pytest.approx(metrics["top1_single_clip"], abs=0.01)
    assert cell(t["hcml_table3"], "", "ours_r2d50", "Kinetics-400")["reproduced"] == cell(t["hcml_table6"], "", "ours_r2d", "Top-1")["reproduced"]
    for variant in ("baseline", "pmb"):
        assert json.loads((repo / RESULTS / f"eval/hcml/{variant}/none/joint_train/ssv1.json").read_text())["ss_epochs"] == 0


@pytest.mark.smoke
def test_efficacy_and_knn_record_their_parts(hcml_dag):
    repo, _ = hcml_dag
    level1 = json.loads((repo / RESULTS / "eval/hcml/efficacy_level1/none/efficacy/ucf101_split1.json").read_text())
    assert "efficacy_contrastive" not in level1 and level1["classifier"] == "logistic_regression"
    level3 = json.loads((repo / RESULTS / "eval/hcml/efficacy_level3/none/efficacy/ucf101_split1.json").read_text())
    for supervision in ("action", "reconstruction", "contrastive"):
        train, test = level3[f"efficacy_{supervision}_train_top1"], level3[f"efficacy_{supervision}_test_top1"]
        assert level3[f"efficacy_{supervision}"] == pytest.approx(train / max(train - test, 1.0))
    high = json.loads((repo / RESULTS / "eval/hcml/motion_features_high/none/knn_motion/ssv1.json").read_text())
    assert len(high["classes"]) == min(3, high["num_classes"]) and all("below" in c for c in high["classes"])


def tolerance(run, metrics: dict) -> float:
    one_video = 100.0 / metrics["num_test_videos"]
    if run.protocol != "efficacy":
        return one_video
    train, test = metrics[f"{run.metric}_train_top1"], metrics[f"{run.metric}_test_top1"]
    score = lambda acc_test: train / max(train - acc_test, 1.0)
    return max(abs(score(test + one_video) - score(test)), abs(score(test - one_video) - score(test)))


@pytest.mark.smoke
def test_hcml_smoke_regression(hcml_dag, num_regression):
    repo, tables = hcml_dag
    check_regression(num_regression, repo, tables, own_cells(repo), tolerance)
