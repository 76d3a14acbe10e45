"""No test-set model selection: whatever a protocol fits or selects (the linear layer, the SVM, the
fine-tuned network, the retrieval gallery) reads only training (or validation) videos; test videos
are only predicted. Each protocol's evaluate runs on a fake encoder whose features say which split
a video came from, and its fitting step is watched."""
from pathlib import Path

import pandas as pd
import pytest
import torch

import protocols.detection as detection
import protocols.efficacy as efficacy
import protocols.features as features
import protocols.finetune as finetune
import protocols.finetune_vf as finetune_vf
import protocols.joint_train as joint_train
import protocols.knn_motion as knn_motion
from core.config import load_scale
import protocols.linear as linear
import protocols.pretext as pretext
import protocols.retrieval as retrieval
import protocols.svm as svm
from protocols import PROTOCOLS

MANIFEST = pd.DataFrame({"video_id": [f"v{i}" for i in range(12)], "path": [f"v{i}.avi" for i in range(12)],
                         "label": [i % 2 for i in range(12)], "split": ["train"] * 6 + ["val"] * 2 + ["test"] * 4})
CHECKPOINT = {"input": {"modality": "rgb", "motion_kind": None, "mean": [0.5] * 3, "std": [0.2] * 3,
                        "clip": {"num_frames": 2, "stride": 1, "crop_size": 8, "short_side": 8}}}


def fake_extract(encoder, videos, test, cfg, seed):
    """Features whose first component is +1 for a training video, -1 for any other."""
    sign = torch.tensor([1.0 if s == "train" else -1.0 for s in videos["split"]])
    features = torch.randn(len(videos), 2, 4)
    features[:, :, 0] = sign[:, None]
    return features, torch.tensor(videos["label"].to_numpy())


def only_train(features):
    assert (torch.as_tensor(features)[..., 0] == 1).all(), "a fitting step read a non-training video"


@pytest.fixture(autouse=True)
def fake_encoder(monkeypatch):
    for module in (linear, features):  # features.video_features serves the SVM and retrieval
        monkeypatch.setattr(module, "FrozenEncoder", lambda *a, **k: None)
        monkeypatch.setattr(module, "extract", fake_extract)


def test_every_protocol_is_checked_here():
    assert set(PROTOCOLS.values()) == {m.__name__ for m in (linear, svm, retrieval, finetune, pretext, finetune_vf,
                                                            joint_train, efficacy, knn_motion, detection)}


def test_linear_layer_is_fitted_on_training_videos_only(monkeypatch):
    fit = linear.fit_linear
    monkeypatch.setattr(linear, "fit_linear", lambda x, y, n, cfg: (only_train(x), fit(x, y, n, cfg))[1])
    cfg = {"solver": "lbfgs", "max_iter": 5, "weight_decay": 0.0, "temporal_views": 2, "spatial_views": 1,
           "train_clips_per_video": 2}
    assert linear.evaluate(CHECKPOINT, MANIFEST, None, None, cfg, 0)["num_test_videos"] == 4


def test_svm_is_fitted_on_training_videos_only(monkeypatch):
    fit = svm.fit_svm
    monkeypatch.setattr(svm, "fit_svm", lambda x, y, cfg: (only_train(x), fit(x, y, cfg))[1])
    cfg = {"C": 1.0, "fit_intercept": False, "tol": 0.01, "max_iter": 100, "temporal_views": 2, "spatial_views": 1}
    assert svm.evaluate(CHECKPOINT, MANIFEST, None, None, cfg, 0)["num_test_videos"] == 4


def test_retrieval_gallery_holds_training_videos_only(monkeypatch):
    recall = retrieval.recall_at_k
    monkeypatch.setattr(retrieval, "recall_at_k", lambda q, ql, g, gl, ks: (only_train(g), recall(q, ql, g, gl, ks))[1])
    cfg = {"ks": [1], "temporal_views": 2, "spatial_views": 1}
    assert retrieval.evaluate(CHECKPOINT, MANIFEST, None, None, cfg, 0)["num_test_videos"] == 4


class Fitted(Exception):
    pass


def test_finetuning_trains_on_training_videos_only(monkeypatch):
    """Fine-tuning (and low-shot) trains on the train split for a fixed number of epochs: no
    checkpoint is chosen by a test score."""
    def fake_fit(model, data, settings, *args, **kwargs):
        assert set(data.videos["split"]) == {"train"} and len(data.videos) == 6
        raise Fitted

    monkeypatch.setattr(finetune, "Classifier", lambda *a: torch.nn.Linear(1, 1))
    monkeypatch.setattr(finetune, "fit", fake_fit)
    cfg = load_scale("smoke")["finetune"]
    with pytest.raises(Fitted):
        finetune.evaluate(CHECKPOINT, MANIFEST, Path("."), None, cfg, 0)


def test_pretext_reads_the_pretraining_log_only(tmp_path):
    """The pretext accuracies are the pretraining's own log (training batches): no video of the
    evaluation manifest is embedded or fitted on (the autouse fake encoder would say which)."""
    pd.DataFrame({"epoch": [0, 0], "step": [0, 1], "loss": [1.0, 1.0], "pretext_context_matching_top1": [10.0, 20.0]}
                 ).to_csv(tmp_path / "log.csv", index=False)
    metrics = pretext.evaluate({"provenance": {"videos": 6}}, MANIFEST, None, None, {}, 0, checkpoint_dir=tmp_path)
    assert metrics["context_matching_top1_ep1"] == 15.0 and metrics["num_test_videos"] == 6


def test_v_plus_f_trains_both_streams_on_training_videos_only(monkeypatch):
    """MaCLR's V+F fine-tunes each pathway as fine-tuning does: on the train split, fixed epochs."""
    def fake_fit(model, data, settings, *args, **kwargs):
        assert set(data.videos["split"]) == {"train"} and len(data.videos) == 6
        raise Fitted

    monkeypatch.setattr(finetune, "Classifier", lambda *a: torch.nn.Linear(1, 1))
    monkeypatch.setattr(finetune, "fit", fake_fit)
    motion = {"input": {**CHECKPOINT["input"], "modality": "motion", "kind": "edge", "motion_kind": "edge", "motion_scale": 0.1}}
    with pytest.raises(Fitted):
        finetune_vf.evaluate({**CHECKPOINT, "extra_encoders": {"motion": motion}}, MANIFEST, Path("."), Path("."),
                             load_scale("smoke")["finetune"], 0)


@pytest.mark.parametrize("module, config", [(joint_train, {}), (efficacy, {"efficacy_level": 1}), (knn_motion, {"knn_level": 1})],
                         ids=["joint_train", "efficacy", "knn_motion"])
def test_hcml_protocols_train_on_training_videos_only(monkeypatch, module, config):
    """HCML's joint training, the efficacy probe's networks and the kNN's network (Tables 1-3, 5, 6)
    are trained with the labels of the train split only; test videos are only predicted."""
    def fake_train(method_cfg, checkpoint, videos, *args, **kwargs):
        assert set(videos["split"]) == {"train"} and len(videos) == 6
        raise Fitted

    monkeypatch.setattr(module, "train_with_labels", fake_train)
    checkpoint = {**CHECKPOINT, "provenance": {"method": "hcml"}, "config": {"variant": "v", **config}}
    with pytest.raises(Fitted):
        module.evaluate(checkpoint, MANIFEST.assign(label_name=MANIFEST["label"].astype(str)), Path("."), None,
                        load_scale("smoke")[module.__name__.split(".")[-1]], 0)


def test_detector_trains_on_training_keyframes_only(monkeypatch, tmp_path):
    """AVA detection trains on the boxes of the train split's keyframes for a fixed number of epochs;
    the validation keyframes are only predicted."""
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt").write_text('item {\n  name: "a"\n  id: 12\n}\n')
    videos = MANIFEST[MANIFEST["split"] != "test"]
    boxes = pd.DataFrame({"video_id": videos["video_id"], "timestamp": 903, "frame": 1, "x1": 0.1, "y1": 0.1, "x2": 0.5,
                          "y2": 0.5, "action_id": 12, "split": videos["split"]})

    def fake_fit(model, data, settings, *args, **kwargs):
        assert {f["video_id"] for f in data.frames} == {f"v{i}" for i in range(6)}
        raise Fitted

    monkeypatch.setattr(detection, "Detector", lambda *a: torch.nn.Linear(1, 1))
    monkeypatch.setattr(detection, "fit", fake_fit)
    with pytest.raises(Fitted):
        detection.evaluate(CHECKPOINT, videos, tmp_path, None, load_scale("smoke")["detection"], 0, boxes=boxes,
                           out=tmp_path / "metrics.json")
