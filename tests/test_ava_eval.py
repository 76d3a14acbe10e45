"""AVA frame-mAP (protocols/ava_eval.py): hand-computed APs, the official matching rules, the
bad-input policy, and the real AVA-format sample files against a public implementation's result."""
from pathlib import Path

import numpy as np
import pytest

from core.errors import AnnotationError
from protocols import ava_eval

SHARED_AVA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ava-format"
A, B, C = "videoAAAAAA", "videoBBBBBB", "videoCCCCCC"
BOX = (0.1, 0.1, 0.5, 0.5)
FAR = (0.6, 0.6, 0.9, 0.9)  # IoU 0 with BOX


def labelmap(tmp_path, ids=(1, 2)):
    path = tmp_path / "labels.pbtxt"
    path.write_text("".join(f'item {{\n  name: "action{i}"\n  id: {i}\n}}\n' for i in ids))
    return path


def rows_csv(tmp_path, name, rows):
    path = tmp_path / name
    path.write_text("".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


def row(video, second, box, action, last):
    return (video, f"{second:04d}", *box, action, last)


def run(tmp_path, gt, pred, ids=(1, 2), excluded=None):
    ex = rows_csv(tmp_path, "excluded.csv", excluded) if excluded is not None else None
    return ava_eval.ava_frame_map(rows_csv(tmp_path, "gt.csv", gt), rows_csv(tmp_path, "pred.csv", pred),
                                  labelmap(tmp_path, ids), ex)


def test_two_classes_known_ap(tmp_path):
    gt = [row(A, 1000, BOX, 1, 0), row(B, 1000, BOX, 1, 0), row(A, 1000, BOX, 2, 0)]
    pred = [row(A, 1000, BOX, 1, 0.9), row(B, 1000, FAR, 1, 0.8), row(B, 1000, BOX, 1, 0.7),  # TP FP TP
            row(C, 1000, BOX, 2, 0.95), row(A, 1000, BOX, 2, 0.6)]  # FP (image without truth), TP
    result = run(tmp_path, gt, pred)
    # class 1: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> 1/2 * 1 + 1/2 * 2/3; class 2: 1 * 1/2
    assert result["per_class"][1] == pytest.approx(5 / 6)
    assert result["per_class"][2] == pytest.approx(0.5)
    assert result["map"] == pytest.approx((5 / 6 + 0.5) / 2)


def test_iou_threshold_is_inclusive_half(tmp_path):
    assert ava_eval.box_iou(np.array([[0, 0, 1, 1.0]]), np.array([[0, 0, 0.5, 1.0]]))[0, 0] == pytest.approx(0.5)
    result = run(tmp_path, [row(A, 1000, (0, 0, 1, 1), 1, 0)], [row(A, 1000, (0, 0, 0.5, 1), 1, 0.9)], ids=(1,))
    assert result["map"] == pytest.approx(1.0)
    result = run(tmp_path, [row(A, 1000, (0, 0, 1, 1), 1, 0)], [row(A, 1000, (0, 0, 0.49, 1), 1, 0.9)], ids=(1,))
    assert result["map"] == pytest.approx(0.0)


def test_duplicate_detection_is_false_positive(tmp_path):
    assert ava_eval.match_detections(np.array([BOX, BOX]), np.array([BOX])).tolist() == [True, False]
    gt = [row(A, 1000, BOX, 1, 0), row(B, 1000, BOX, 1, 0)]
    pred = [row(A, 1000, BOX, 1, 0.9), row(A, 1000, BOX, 1, 0.8), row(B, 1000, BOX, 1, 0.7)]  # TP, duplicate, TP
    assert run(tmp_path, gt, pred, ids=(1,))["map"] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_excluded_timestamp_is_ignored(tmp_path):
    gt = [row(A, 1000, BOX, 1, 0), row(A, 1001, BOX, 1, 0)]
    pred = [row(A, 1001, FAR, 1, 0.99), row(A, 1000, BOX, 1, 0.5)]
    assert run(tmp_path, gt, pred, ids=(1,))["map"] == pytest.approx(0.25)  # FP, then TP: precision 1/2 at recall 1/2
    result = run(tmp_path, gt, pred, ids=(1,), excluded=[(A, "1001")])
    assert result["map"] == pytest.approx(1.0)
    assert result["gt_excluded_rows"] == 1 and result["pred_excluded_rows"] == 1


def test_class_without_ground_truth_left_out_of_mean(tmp_path):
    gt = [row(A, 1000, BOX, 1, 0)]
    pred = [row(A, 1000, BOX, 1, 0.9), row(A, 1000, BOX, 2, 0.8), row(A, 1000, BOX, 3, 0.7)]
    result = run(tmp_path, gt, pred, ids=(1, 2, 3))
    assert result["per_class"] == {1: pytest.approx(1.0), 2: None, 3: None}
    assert result["map"] == pytest.approx(1.0)


def test_class_with_ground_truth_but_no_prediction_scores_zero(tmp_path):
    gt = [row(A, 1000, BOX, 1, 0), row(A, 1000, BOX, 2, 0)]
    result = run(tmp_path, gt, [row(A, 1000, BOX, 1, 0.9)])
    assert result["per_class"][2] == 0.0 and result["map"] == pytest.approx(0.5)


def test_actions_outside_labelmap_are_counted_not_evaluated(tmp_path):
    gt = [row(A, 1000, BOX, 1, 0), row(A, 1000, BOX, 74, 0)]
    result = run(tmp_path, gt, [row(A, 1000, BOX, 1, 0.9), row(A, 1000, FAR, 74, 0.95)], ids=(1,))
    assert result["map"] == pytest.approx(1.0)
    assert result["gt_not_evaluated"] == {74: 1} and result["pred_not_evaluated"] == {74: 1}


def test_prediction_capacity_keeps_top_scores(tmp_path):
    pred = [row(A, 1000, FAR, 1, 0.5 + i / 1000) for i in range(ava_eval.PRED_CAPACITY)]
    pred.append(row(A, 1000, BOX, 1, 0.1))  # 51st, lowest score: dropped, as the official reader does
    assert run(tmp_path, [row(A, 1000, BOX, 1, 0)], pred, ids=(1,))["map"] == 0.0


@pytest.mark.parametrize("bad, message", [
    (row(A, 1000, (0.1, 0.1, 1.2, 0.5), 1, 0.9), "outside|not a normalised"),
    (row(A, 1000, (0.5, 0.1, 0.1, 0.5), 1, 0.9), "not a normalised"),
    (row(A, 1000, BOX, 81, 0.9), "action id 81"),
    (row(A, 1000, BOX, 0, 0.9), "action id 0"),
    (row(A, 901, BOX, 1, 0.9), "timestamp 901"),
    (row(A, 1799, BOX, 1, 0.9), "timestamp 1799"),
    (row(A, 1000, BOX, 1, "nan"), "not finite"),
])
def test_bad_prediction_row_named_with_file_and_line(tmp_path, bad, message):
    pred = [row(A, 1000, BOX, 1, 0.9), bad]
    with pytest.raises(AnnotationError, match=rf"pred\.csv:2: .*({message})"):
        run(tmp_path, [row(A, 1000, BOX, 1, 0)], pred)


def test_bad_ground_truth_row_named_with_file_and_line(tmp_path):
    with pytest.raises(AnnotationError, match=r"gt\.csv:3: .*timestamp 1800"):
        run(tmp_path, [row(A, 1000, BOX, 1, 0), row(A, 1000, BOX, 2, 0), row(A, 1800, BOX, 1, 0)],
            [row(A, 1000, BOX, 1, 0.9)])


def test_predictions_without_scores_are_an_error_not_zero(tmp_path, capsys):
    gt = rows_csv(tmp_path, "gt.csv", [row(A, 1000, BOX, 1, 0)])
    unscored = rows_csv(tmp_path, "unscored.csv", [(A, "1000", *BOX, 1)])
    with pytest.raises(AnnotationError, match=r"unscored\.csv:1: .*without scores"):
        ava_eval.ava_frame_map(gt, unscored, labelmap(tmp_path))
    empty = rows_csv(tmp_path, "empty.csv", [])
    with pytest.raises(AnnotationError, match=r"empty\.csv: prediction file holds no detections"):
        ava_eval.ava_frame_map(gt, empty, labelmap(tmp_path))
    assert ava_eval.main(["--gt", str(gt), "--pred", str(unscored), "--labels", str(labelmap(tmp_path))]) == 2
    assert "unscored.csv:1" in capsys.readouterr().err


def test_cli_prints_overall_and_per_class(tmp_path, capsys):
    gt = rows_csv(tmp_path, "gt.csv", [row(A, 1000, BOX, 1, 0)])
    pred = rows_csv(tmp_path, "pred.csv", [row(A, 1000, BOX, 1, 0.9)])
    out = tmp_path / "result.json"
    assert ava_eval.main(["--gt", str(gt), "--pred", str(pred), "--labels", str(labelmap(tmp_path)),
                          "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "frame-mAP@0.5IoU: 1.000000" in printed and "action2: no ground truth" in printed
    assert out.is_file()


@pytest.mark.skipif(not (SHARED_AVA / "eval_detection").is_dir(), reason="shared AVA-format samples absent")
def test_real_ava_format_files_match_public_result():
    """mmaction2 records 0.09385522 for these three files (open-mmlab/mmaction2,
    tests/evaluation/metrics/test_acc_metric.py `test_ava_detection`, through its vendored copy of the
    official evaluator)."""
    d = SHARED_AVA / "eval_detection"
    result = ava_eval.ava_frame_map(d / "gt.csv", d / "pred.csv", d / "action_list.txt")
    assert result["map"] == pytest.approx(0.09385522, abs=1e-8)
    assert result["num_gt_boxes"] == {1: 4, 2: 3, 3: 5}


@pytest.mark.skipif(not (SHARED_AVA / "ava_dataset").is_dir(), reason="shared AVA-format samples absent")
def test_real_ava_sample_with_exclusions():
    """The AVA sample annotations scored against themselves: each label-map class with ground truth
    outside the excluded timestamps has AP 1; action 74 is not in the label map and is counted."""
    d = SHARED_AVA / "ava_dataset"
    result = ava_eval.ava_frame_map(d / "ava_sample.csv", d / "ava_sample.csv", d / "action_list.txt",
                                    d / "ava_excluded_timestamps_sample.csv")
    assert result["per_class"] == {12: 1.0, 17: 1.0, 79: 1.0, 80: None}
    assert result["gt_not_evaluated"] == {74: 1} and result["gt_excluded_rows"] == 4
