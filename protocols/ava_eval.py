"""AVA v2.2 frame-mAP at IoU 0.5 (MaCLR §4.4, Table 5), with the official AVA evaluator's semantics.

    python -m protocols.ava_eval --gt GT.csv --pred PRED.csv --labels LABELMAP [--excluded FILE] [--out JSON]

prints the overall mAP and each label-map class's AP. The semantics follow the official evaluator
(ActivityNet `Evaluation/get_ava_performance.py` with its vendored TF object-detection
`object_detection_evaluation.PascalDetectionEvaluator`):
- Rows are `video_id,timestamp,x1,y1,x2,y2,action_id[,score]` (boxes normalised to [0, 1]); an image
  is one (video, timestamp) key. Ground-truth rows' 8th column is a person id and is not read.
- Only the label map's classes are evaluated (`ava_action_list_v2.2_for_activitynet_2019.pbtxt`: 60
  of AVA's 80 actions); rows of the other AVA actions are left out, as the official whitelist does,
  and counted in the report (`not_evaluated`), never dropped unseen.
- Timestamps listed in the excluded file are removed from ground truth and predictions alike.
- At most the 50 highest-scoring predictions of an image are kept (the official `capacity=50`).
- Per class, predictions are matched in descending score order to that image's ground-truth boxes of
  the class: a prediction whose best-overlapping box has IoU >= 0.5 and is still unmatched is a true
  positive; anything else, a second detection of an already matched box included, is a false positive.
- AP is PASCAL VOC's area under the monotone (interpolated) precision-recall curve; a class without
  ground truth has no AP and is left out of the mean; a class with ground truth but no prediction has
  AP 0.

Bad input policy: errors, naming file and line, for a malformed row, a box outside [0, 1] or with
x1 > x2 / y1 > y2, a timestamp outside AVA's annotated 902-1798 s, an action id that is neither a
label-map class nor one of AVA's 80 actions (1-80), a prediction file with no rows or rows without a
score column, and a label map without classes. Nothing is quarantined silently: the only rows left
out are the AVA actions outside the label map and excluded timestamps, both counted in the report.
"""
from __future__ import annotations

import argparse
import csv
import heapq
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.errors import AnnotationError, MissingInputError
from core.io import write_json

IOU_THRESHOLD = 0.5  # "frame-mAP at IoU 0.5" (MaCLR §4.4; the official PascalDetectionEvaluator's default)
PRED_CAPACITY = 50  # official get_ava_performance.py: read_csv(detections, class_whitelist, 50)
FIRST_SECOND, LAST_SECOND = 902, 1798  # AVA v2.2 annotates the 15-minute span 902..1798 s of each movie
AVA_ACTIONS = range(1, 81)  # ava_action_list_v2.2.pbtxt: ids 1..80


def _open(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"AVA evaluation input not found: {path}")
    return path


def read_labelmap(path: str | Path) -> dict[int, str]:
    """Class id -> name from a label-map pbtxt (`item { name: "..." id: N }`)."""
    path = _open(path)
    classes, name = {}, None
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if line.startswith("name:"):
            name = line.split('"')[1] if '"' in line else line.split(":", 1)[1].strip()
        elif line.startswith(("id:", "label_id:")):
            try:
                classes[int(line.split(":", 1)[1])] = name
            except ValueError:
                raise AnnotationError(f"{path}:{line_no}: class id is not an integer: {line!r}") from None
    if not classes:
        raise AnnotationError(f"{path}: label map names no class (no `id:` lines)")
    return classes


def _timestamp(value: str, where: str) -> int:
    try:
        second = int(value)
    except ValueError:
        raise AnnotationError(f"{where}: timestamp {value!r} is not an integer number of seconds") from None
    if not FIRST_SECOND <= second <= LAST_SECOND:
        raise AnnotationError(f"{where}: timestamp {second} s is outside AVA's annotated {FIRST_SECOND}-{LAST_SECOND} s")
    return second


def read_excluded(path: str | Path | None) -> set[tuple[str, int]]:
    """(video, timestamp) keys of an excluded-timestamps CSV (`video_id,timestamp`)."""
    if path is None:
        return set()
    path = _open(path)
    keys = set()
    with path.open(newline="") as f:
        for line_no, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            if len(row) != 2:
                raise AnnotationError(f"{path}:{line_no}: expected video_id,timestamp, got {len(row)} columns")
            keys.add((row[0], _timestamp(row[1], f"{path}:{line_no}")))
    return keys


@dataclass
class Boxes:
    """One AVA CSV, grouped by image key: per image, boxes (N, 4) as x1,y1,x2,y2, class ids, scores."""
    boxes: dict = field(default_factory=dict)
    classes: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)
    not_evaluated: dict = field(default_factory=dict)  # AVA action id outside the label map -> rows
    excluded_rows: int = 0


def read_boxes(path: str | Path, classes: dict[int, str], excluded: set, predictions: bool) -> Boxes:
    """Read a ground-truth or prediction CSV under the module's bad-input policy.

    Predictions keep, per image, the `PRED_CAPACITY` highest scores (the official reader's heap)."""
    path = _open(path)
    rows = defaultdict(list)
    out = Boxes()
    not_evaluated = defaultdict(int)
    with path.open(newline="") as f:
        for line_no, row in enumerate(csv.reader(f), 1):
            if not row:
                continue
            where = f"{path}:{line_no}"
            if predictions and len(row) != 8:
                raise AnnotationError(f"{where}: a prediction row needs 8 columns (video_id,timestamp,x1,y1,x2,y2,"
                                      f"action_id,score), got {len(row)}: a prediction file without scores cannot be ranked")
            if len(row) not in (7, 8):
                raise AnnotationError(f"{where}: expected 7 or 8 columns, got {len(row)}")
            key = (row[0], _timestamp(row[1], where))
            try:
                box = [float(v) for v in row[2:6]]
                action = int(row[6])
                score = float(row[7]) if predictions else 1.0
            except ValueError:
                raise AnnotationError(f"{where}: non-numeric box, action id or score in {row!r}") from None
            if not all(0.0 <= v <= 1.0 for v in box) or box[0] > box[2] or box[1] > box[3]:
                raise AnnotationError(f"{where}: box {box} is not a normalised x1<=x2, y1<=y2 box in [0, 1]")
            if not np.isfinite(score):
                raise AnnotationError(f"{where}: score {row[7]!r} is not finite")
            if action not in classes:
                if action not in AVA_ACTIONS:
                    raise AnnotationError(f"{where}: action id {action} is neither a label-map class nor an AVA "
                                          f"action ({AVA_ACTIONS.start}-{AVA_ACTIONS.stop - 1})")
                not_evaluated[action] += 1
                continue
            if key in excluded:
                out.excluded_rows += 1
                continue
            entries = rows[key]
            entry = (score, line_no, action, box)
            if not predictions or len(entries) < PRED_CAPACITY:
                heapq.heappush(entries, entry)
            elif score > entries[0][0]:
                heapq.heapreplace(entries, entry)
    if predictions and not rows and not out.excluded_rows and not not_evaluated:
        raise AnnotationError(f"{path}: prediction file holds no detections")
    for key, entries in rows.items():
        entries.sort(key=lambda e: (-e[0], e[1]))  # descending score, file order among ties
        out.boxes[key] = np.array([e[3] for e in entries], dtype=float).reshape(-1, 4)
        out.classes[key] = np.array([e[2] for e in entries], dtype=int)
        out.scores[key] = np.array([e[0] for e in entries], dtype=float)
    out.not_evaluated = dict(sorted(not_evaluated.items()))
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of x1,y1,x2,y2 boxes; areas without the +1 pixel convention (normalised coordinates)."""
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=2)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_detections(pred: np.ndarray, gt: np.ndarray, threshold: float = IOU_THRESHOLD) -> np.ndarray:
    """True-positive flags of one image's and class's predictions, given in descending score order:
    each prediction takes its highest-IoU ground-truth box; it is a true positive when that IoU is at
    least `threshold` and the box is not yet matched (a duplicate detection is a false positive)."""
    tp = np.zeros(len(pred), dtype=bool)
    if len(pred) == 0 or len(gt) == 0:
        return tp
    iou = box_iou(pred, gt)
    best = iou.argmax(axis=1)
    taken = np.zeros(len(gt), dtype=bool)
    for i, j in enumerate(best):
        if iou[i, j] >= threshold and not taken[j]:
            tp[i] = taken[j] = True
    return tp


def voc_average_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """PASCAL VOC AP (the official evaluator's metrics.compute_average_precision): precision made
    monotone from the right, summed over the recall steps of the score-ranked predictions."""
    order = np.argsort(scores, kind="stable")[::-1]
    hits = tp[order].astype(float)
    cum_tp, cum_fp = np.cumsum(hits), np.cumsum(1.0 - hits)
    precision = np.concatenate([[0.0], cum_tp / np.maximum(cum_tp + cum_fp, 1e-12), [0.0]])
    recall = np.concatenate([[0.0], cum_tp / num_gt, [1.0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[steps] - recall[steps - 1]) * precision[steps]))


def evaluate(gt: Boxes, pred: Boxes, classes: dict[int, str], threshold: float = IOU_THRESHOLD) -> dict:
    """Per-class AP (None where a class has no ground truth) and their mean over the classes with
    ground truth. Predictions on images without ground truth are false positives, as officially."""
    num_gt = defaultdict(int)
    for labels in gt.classes.values():
        for c in labels:
            num_gt[int(c)] += 1
    scores, hits = defaultdict(list), defaultdict(list)
    for key, boxes in pred.boxes.items():
        for c in np.unique(pred.classes[key]):
            mine = pred.classes[key] == c
            truth = gt.boxes[key][gt.classes[key] == c] if key in gt.boxes else np.zeros((0, 4))
            scores[int(c)].append(pred.scores[key][mine])
            hits[int(c)].append(match_detections(boxes[mine], truth, threshold))
    per_class = {}
    for c in classes:
        if num_gt[c] == 0:
            per_class[c] = None
        elif not scores[c]:
            per_class[c] = 0.0
        else:
            per_class[c] = voc_average_precision(np.concatenate(scores[c]), np.concatenate(hits[c]), num_gt[c])
    evaluated = [ap for ap in per_class.values() if ap is not None]
    return {"map": float(np.mean(evaluated)) if evaluated else None, "per_class": per_class,
            "num_gt_boxes": dict(sorted(num_gt.items())), "iou_threshold": threshold}


def ava_frame_map(gt_csv, pred_csv, labelmap, excluded_csv=None) -> dict:
    """Frame-mAP of `pred_csv` against `gt_csv` over the label map's classes (see the module docstring)."""
    classes = read_labelmap(labelmap)
    excluded = read_excluded(excluded_csv)
    gt = read_boxes(gt_csv, classes, excluded, predictions=False)
    pred = read_boxes(pred_csv, classes, excluded, predictions=True)
    if not gt.boxes:
        raise AnnotationError(f"{gt_csv}: no ground-truth box of a label-map class outside the excluded timestamps")
    result = evaluate(gt, pred, classes)
    result.update(class_names=classes, gt_not_evaluated=gt.not_evaluated, pred_not_evaluated=pred.not_evaluated,
                  gt_excluded_rows=gt.excluded_rows, pred_excluded_rows=pred.excluded_rows,
                  num_gt_images=len(gt.boxes), num_pred_images=len(pred.boxes))
    return result


def report(result: dict) -> str:
    lines = [f"frame-mAP@{result['iou_threshold']}IoU: {result['map']:.6f}"]
    for c, ap in result["per_class"].items():
        shown = "no ground truth (left out of the mean)" if ap is None else f"{ap:.6f}"
        lines.append(f"  {c:>3} {result['class_names'][c]}: {shown}")
    for side in ("gt", "pred"):
        if result[f"{side}_not_evaluated"]:
            lines.append(f"{side} rows of AVA actions outside the label map (not evaluated): {result[f'{side}_not_evaluated']}")
        if result[f"{side}_excluded_rows"]:
            lines.append(f"{side} rows at excluded timestamps: {result[f'{side}_excluded_rows']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gt", required=True, help="ground-truth CSV (e.g. ava_val_v2.2.csv)")
    parser.add_argument("--pred", required=True, help="prediction CSV with a score column")
    parser.add_argument("--labels", required=True, help="label map pbtxt (ava_action_list_v2.2_for_activitynet_2019.pbtxt)")
    parser.add_argument("--excluded", help="excluded timestamps CSV (ava_val_excluded_timestamps_v2.2.csv)")
    parser.add_argument("--out", help="also write the result as JSON here")
    args = parser.parse_args(argv)
    try:
        result = ava_frame_map(args.gt, args.pred, args.labels, args.excluded)
    except (AnnotationError, MissingInputError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(report(result))
    if args.out:
        write_json(args.out, {k: ({str(c): v for c, v in val.items()} if isinstance(val, dict) else val)
                              for k, val in result.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
