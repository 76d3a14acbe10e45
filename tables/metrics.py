"""What each evaluation protocol's metrics JSON holds (CONTRIBUTING.md, "Metrics"), and its check.

protocols/cli.py checks a protocol's metrics before writing them, and the tables check every file
again before a number of it enters a table, so a hand-edited, truncated or other-scale file is
refused by name. Metric names are templates: `<k>` stands for a positive integer (`r_at_<k>`).
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from core import io
from core.errors import MetricsError


@dataclass(frozen=True)
class ProtocolMetrics:
    writes: tuple[str, ...]     # metric names the protocol writes, each a percentage in [0, 100]
    required: tuple[str, ...]   # metric names every file of the protocol holds
    reports: tuple[str, ...]    # names a table spec may ask of the protocol: `writes`, and what the
                                # papers report under it that the suite does not compute yet


# Keys every metrics file holds (protocols/cli.py adds scale and protocol to what a protocol returns).
REQUIRED_FIELDS = ("scale", "protocol", "num_test_videos", "views")
COUNT_FIELDS = {"num_train_videos": 1, "num_test_videos": 1, "num_classes": 1, "train_clips_per_video": 1,
                "epochs": 0, "recall_verbs": 1}  # name -> smallest value
VIEWS_RE = re.compile(r"^\d+x\d+$")

_ACCURACY = ("top1", "top5")
_PRETEXT = ("context_matching_top1_ep<k>", "motion_prediction_top1_ep<k>")
# CMD Table 3: accuracy after <k> fine-tuning epochs, where a recipe lists evaluation epochs.
# MaCLR Table 4b: VidSitu's macro-averaged verb recall@5 (protocols/finetune.py, verb_metrics).
_FINETUNE = ProtocolMetrics(
    writes=_ACCURACY + ("top1_ep<k>", "top5_ep<k>", "macro_recall_at_<k>"), required=_ACCURACY,
    reports=_ACCURACY + ("top1_ep<k>", "top5_ep<k>", "macro_recall_at_<k>"))
_HCML_JOINT = _ACCURACY + ("top1_single_clip", "top5_single_clip")
_HCML_EFFICACY = tuple(f"efficacy_{s}{part}" for s in ("action", "reconstruction", "contrastive")
                       for part in ("", "_train_top1", "_test_top1"))
PROTOCOL_METRICS: dict[str, ProtocolMetrics] = {
    "linear": ProtocolMetrics(writes=_ACCURACY, required=_ACCURACY, reports=_ACCURACY),
    "svm": ProtocolMetrics(writes=_ACCURACY, required=_ACCURACY, reports=_ACCURACY),  # MCL §4.2 linear SVM
    "finetune": _FINETUNE,
    "lowshot": _FINETUNE,
    # CMD Table 5 (the checkpoint's extra encoders, its I-Network and M-Network) and Table 7 (R@1 of the
    # snapshot after <k> pretraining epochs): protocols/retrieval.py
    # MaCLR: its Motion pathway (extra encoder `motion`) too.
    "retrieval": ProtocolMetrics(writes=("r_at_<k>", "r_at_<k>_ep<k>", "i_network_r_at_<k>", "m_network_r_at_<k>", "motion_r_at_<k>"),
                                 required=("r_at_1",),
                                 reports=("r_at_<k>", "r_at_<k>_ep<k>", "i_network_r_at_<k>", "m_network_r_at_<k>", "motion_r_at_<k>")),
    # MaCLR Table 2 "V+F": the fused streams and each stream alone (protocols/finetune_vf.py)
    "finetune_vf": ProtocolMetrics(writes=_ACCURACY + ("visual_top1", "motion_top1"), required=_ACCURACY,
                                   reports=_ACCURACY + ("visual_top1", "motion_top1")),
    # CMD Table 7: top-1 accuracy of the pretext tasks in pretraining epoch <k> (protocols/pretext.py)
    "pretext": ProtocolMetrics(writes=_PRETEXT, required=(), reports=_PRETEXT),
    # HCML Tables 2, 3, 6: one trained model tested on a single clip (Table 2) and on the recipe's views
    "joint_train": ProtocolMetrics(writes=_HCML_JOINT, required=_HCML_JOINT, reports=_HCML_JOINT),
    # HCML Table 1: efficacy scores (Acc_train / gap, gap floored at 1 point, so within [0, 100]) and
    # the classifier's accuracies behind them; level 1 has no contrastive supervision
    "efficacy": ProtocolMetrics(writes=_HCML_EFFICACY, required=("efficacy_action", "efficacy_reconstruction"),
                                reports=_HCML_EFFICACY),
    "knn_motion": ProtocolMetrics(writes=("top1",), required=("top1",), reports=("top1",)),  # HCML Table 5
    # MaCLR Table 5: AVA frame-mAP at IoU 0.5 over the label map's classes (protocols/detection.py)
    "detection": ProtocolMetrics(writes=("map",), required=("map",), reports=("map",)),
}


# What every metrics file a protocol writes records about how its number was made (protocols/cli.py):
# the code (pretraining and evaluation commit, dirty tree), the evaluation data (manifest hash, videos
# used against those the official annotations list, fingerprint of the videos), the clip, views and
# how scores of the views are averaged, the initialisation, seeds, scale and motion estimator, the
# packages and the device.
PROVENANCE_FIELDS = ("git_commit", "eval_git_commit", "eval_git_dirty", "eval_manifest_sha256", "eval_videos_used",
                     "eval_videos_listed", "eval_data_fingerprint", "clip", "views", "score_averaging",
                     "initialisation", "checkpoint_sha256", "seed", "eval_seed", "scale", "motion_estimator",
                     "packages", "device")
PACKAGES = ("torch", "torchvision", "av", "dali", "opencv")
SCORE_AVERAGING = ("softmax", "logits", "features", "none")  # none: a pretext accuracy, one sample per step, no views


def check_provenance(data: dict, where: str) -> dict:
    """`data` if it records every provenance field, else a MetricsError naming the ones missing."""
    missing = [k for k in PROVENANCE_FIELDS if k not in data]
    missing += [f"packages.{p}" for p in PACKAGES if p not in (data.get("packages") or {})]
    if missing:
        raise MetricsError(f"{where}: missing provenance field(s) {', '.join(missing)}")
    if data["score_averaging"] not in SCORE_AVERAGING:
        raise MetricsError(f"{where}: key 'score_averaging' is {data['score_averaging']!r}, not one of {SCORE_AVERAGING}")
    if not isinstance(data["initialisation"], dict) or "kind" not in data["initialisation"]:
        raise MetricsError(f"{where}: key 'initialisation' is {data['initialisation']!r}, not {{'kind': ...}}")
    return data


def template_pattern(templates: tuple[str, ...]) -> re.Pattern:
    """A pattern matching the names `templates` describe; a `<...>` part stands for a positive integer."""
    return re.compile("|".join(re.sub(r"<[a-z]+>", r"[1-9]\\d*", re.escape(t)) for t in templates))


def _matches(templates: tuple[str, ...], name: str) -> bool:
    return template_pattern(templates).fullmatch(name) is not None


def reports(protocol: str, metric: str) -> bool:
    """Whether a spec may ask protocol `protocol` for `metric` (True for protocols without a schema)."""
    schema = PROTOCOL_METRICS.get(protocol)
    return schema is None or _matches(schema.reports, metric)


def writes(protocol: str, metric: str) -> bool:
    """Whether protocol `protocol`'s metrics files hold `metric`."""
    schema = PROTOCOL_METRICS.get(protocol)
    return schema is not None and _matches(schema.writes, metric)


def check_metrics(data, protocol: str, where: str, scale: str | None = None) -> dict:
    """`data` if it follows `protocol`'s schema (and was made at `scale`, when given), else a
    MetricsError naming `where` and the key at fault."""
    schema = PROTOCOL_METRICS.get(protocol)
    if schema is None:
        raise MetricsError(f"{where}: no metrics schema for protocol {protocol!r} ({', '.join(PROTOCOL_METRICS)})")
    if not isinstance(data, dict):
        raise MetricsError(f"{where}: a metrics file is a JSON object, got {type(data).__name__}")
    missing = [k for k in REQUIRED_FIELDS + schema.required if k not in data]
    if missing:
        raise MetricsError(f"{where}: missing key(s) {', '.join(missing)} of protocol {protocol}; "
                           f"re-run the evaluation that writes it")
    if data["protocol"] != protocol:
        raise MetricsError(f"{where}: key 'protocol' is {data['protocol']!r}, the file is a result of {protocol}")
    if scale is not None and data["scale"] != scale:
        raise MetricsError(f"{where}: key 'scale' is {data['scale']!r}, not {scale!r}: numbers of one scale never "
                           f"enter another scale's table (re-run the evaluation at scale {scale})")
    for key, value in data.items():
        if _matches(schema.writes, key) and not (_is_number(value) and 0 <= value <= 100):
            raise MetricsError(f"{where}: key {key!r} is {value!r}, not a percentage in [0, 100]")
        if key in COUNT_FIELDS and not (isinstance(value, int) and not isinstance(value, bool)
                                        and value >= COUNT_FIELDS[key]):
            raise MetricsError(f"{where}: key {key!r} is {value!r}, not an integer >= {COUNT_FIELDS[key]}")
    if not (isinstance(data["views"], str) and VIEWS_RE.match(data["views"])):
        raise MetricsError(f"{where}: key 'views' is {data['views']!r}, not '<temporal>x<spatial>'")
    return data


def read_metrics(path: str | Path, protocol: str, scale: str) -> dict:
    """The metrics file `path` of protocol `protocol`, checked against its schema and `scale`."""
    try:
        data = io.read_json(path)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MetricsError(f"{path}: cannot read metrics JSON ({err}); re-run the evaluation that writes it") from None
    return check_metrics(data, protocol, str(path), scale)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
