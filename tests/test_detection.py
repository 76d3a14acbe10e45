"""The AVA detection protocol's parts (protocols/detection.py) on small hand-checked cases."""
import math

import numpy as np
import pandas as pd
import pytest
import torch

from core.errors import MissingInputError
from methods.backbones import build_backbone
from protocols import ava_eval
from protocols import detection as det


def test_roi_features_average_time_then_align_and_max_pool():
    """A map linear in space, f(t, y, x) = 10y + x + 2t over two frames (time mean 10y + x + 1), read
    at half the input's resolution: RoIAlign samples bilinearly, which is exact on a linear map, so
    the box's largest sample, the centre of its last bin, gives the pooled value."""
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    features = torch.stack([10 * ys + xs, 10 * ys + xs + 2])[None, None]  # (1, 1, T=2, 4, 4)
    rois = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]])  # batch 0, x1 y1 x2 y2 in pixels of an 8x8 input
    pooled = det.roi_features(features, rois, (8, 8), resolution=7, aligned=True)
    last = -0.5 + 6.5 * 2 / 7  # aligned: the box spans [-0.5, 1.5] of the map, 7 bins, one sample each
    assert pooled.shape == (1, 1)
    assert pooled.item() == pytest.approx(11 * last + 1, abs=1e-5)
    other = det.roi_features(features, torch.tensor([[0.0, 4.0, 4.0, 8.0, 8.0]]), (8, 8), 7, True)
    # two map cells further, the last sample (3.36, 3.36) lies past the map's last cell and is read at it
    assert other.item() == pytest.approx(11 * 3 + 1, abs=1e-5)


def test_jittered_proposals_stay_in_the_unit_square_and_ordered():
    rng = np.random.default_rng(0)
    boxes = np.array([[0.0, 0.0, 0.2, 0.3], [0.9, 0.8, 1.0, 1.0], [0.3, 0.3, 0.7, 0.7]])
    for _ in range(200):
        moved = det.jitter_boxes(boxes, 0.5, rng)
        assert ((moved >= 0) & (moved <= 1)).all()
        assert (moved[:, 2] >= moved[:, 0]).all() and (moved[:, 3] >= moved[:, 1]).all()
    assert np.array_equal(det.jitter_boxes(boxes, 0.0, rng), boxes)
    inner = det.jitter_boxes(boxes[2:], 0.1, np.random.default_rng(1))
    assert np.abs(inner - boxes[2:]).max() <= 0.1 * 0.4 + 1e-12  # at most 10% of the 0.4-wide box


def test_detection_loss_is_per_class_sigmoid_bce():
    """sigmoid(0) = 1/2 for a positive, sigmoid(ln 3) = 3/4 for a negative: (ln 2 + ln 4) / 2."""
    logits = torch.tensor([[0.0, math.log(3.0)]])
    loss = det.detection_loss(logits, torch.tensor([[1.0, 0.0]]))
    assert loss.item() == pytest.approx(1.5 * math.log(2.0))


def test_keyframe_clip_is_centred_on_the_keyframe_and_clamped_to_the_video():
    assert det.keyframe_indices(10, 4, 2, 30).tolist() == [6, 8, 10, 12]  # SlowFast: centre - T*S/2, step S
    assert det.keyframe_indices(1, 4, 2, 30).tolist() == [0, 0, 1, 3]
    assert det.keyframe_indices(11, 4, 2, 12).tolist() == [7, 9, 11, 11]
    assert det.keyframe_indices(5, 1, 8, 30).tolist() == [1]


def test_boxes_follow_the_crop_and_the_flip():
    # a 100x200 frame (h x w); a 100-pixel crop from left 50: the box's x 0.25..0.5 (50..100 px) becomes 0..0.5
    cropped = det.crop_boxes(np.array([[0.25, 0.1, 0.5, 0.6], [0.0, 0.0, 0.1, 0.1]]), (100, 200), 0, 50, 100)
    assert cropped == pytest.approx(np.array([[0.0, 0.1, 0.5, 0.6], [0.0, 0.0, 0.0, 0.1]]))  # second clipped away
    assert det.flip_boxes(np.array([[0.1, 0.2, 0.4, 0.9]])) == pytest.approx(np.array([[0.6, 0.2, 0.9, 0.9]]))


def test_dilated_last_stage_doubles_the_map_with_the_same_weights():
    net = build_backbone("r3d50_slowonly", width_multiplier=0.125)
    clip = torch.randn(1, 3, 2, 64, 64)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    before = net.eval().forward_features(clip).shape
    after = det.dilate_last_stage(net, 2).forward_features(clip).shape
    assert before[-2:] == (2, 2) and after[-2:] == (4, 4)  # output stride 32 -> 16
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


def test_detector_trains_on_padded_boxes():
    """One step's loss reads only the valid (unpadded) boxes and reaches the backbone."""
    net = build_backbone("r3d50_slowonly", width_multiplier=0.125)
    checkpoint = {"encoder": {"backbone": "r3d50_slowonly", "width_multiplier": 0.125, "in_channels": 3,
                              "state_dict": net.state_dict()}}
    cfg = {"last_stage_dilation": 2, "roi_resolution": 7, "roi_aligned": True, "dropout": 0.0}
    model = det.Detector(checkpoint, 3, cfg)
    batch = {"clip": torch.randn(2, 3, 2, 32, 32), "boxes": torch.tensor([[[0.1, 0.1, 0.6, 0.9], [0, 0, 0, 0]]] * 2),
             "labels": torch.tensor([[[1.0, 0, 1], [0, 0, 0]]] * 2), "valid": torch.tensor([[True, False], [True, True]])}
    loss = model(batch)["bce"]
    loss.backward()
    assert torch.isfinite(loss) and model.backbone.stem[0][0].weight.grad.abs().sum() > 0
    batch["labels"][1, 1] = 1.0  # a valid box's targets change the loss; a padded one's would not
    assert model(batch)["bce"].item() != pytest.approx(loss.item())


def test_prediction_csv_round_trips_through_the_ava_evaluator(tmp_path):
    labels = tmp_path / "labels.pbtxt"
    labels.write_text('item {\n  name: "a"\n  id: 12\n}\nitem {\n  name: "b"\n  id: 17\n}\n')
    gt = tmp_path / "gt.csv"
    gt.write_text("vid00000001,0903,0.100,0.100,0.500,0.600,12,0\nvid00000001,0903,0.600,0.100,0.900,0.900,17,1\n")
    rows = pd.DataFrame({"video_id": ["vid00000001"] * 4, "timestamp": [903] * 4,
                         "x1": [0.1, 0.1, 0.6, 0.6], "y1": [0.1, 0.1, 0.1, 0.1], "x2": [0.5, 0.5, 0.9, 0.9],
                         "y2": [0.6, 0.6, 0.9, 0.9], "action_id": [12, 17, 12, 17], "score": [0.9, 0.2, 0.3, 0.8]})
    pred = tmp_path / "pred.csv"
    det.write_ava_csv(pred, rows)
    assert pred.read_text().splitlines()[0] == "vid00000001,0903,0.100,0.100,0.500,0.600,12,0.900000"
    result = ava_eval.ava_frame_map(gt, pred, labels)
    assert result["map"] == pytest.approx(1.0) and result["per_class"] == {12: 1.0, 17: 1.0}
    swapped = rows.assign(score=[0.2, 0.9, 0.8, 0.3])  # each box ranks the wrong class first: APs drop to 1/2
    det.write_ava_csv(pred, swapped)
    assert ava_eval.ava_frame_map(gt, pred, labels)["per_class"] == {12: 0.5, 17: 0.5}


def test_labelled_keyframes_group_actions_by_box():
    boxes = pd.DataFrame({"video_id": ["v", "v", "v"], "timestamp": [903, 903, 903], "frame": [15] * 3,
                          "x1": [0.1, 0.1, 0.5], "y1": [0.1, 0.1, 0.5], "x2": [0.4, 0.4, 0.9], "y2": [0.4, 0.4, 0.9],
                          "action_id": [12, 79, 17]})
    (kf,) = det.labelled_keyframes(boxes, [12, 17, 79])
    assert kf["frame"] == 15 and kf["boxes"].shape == (2, 4)
    assert kf["targets"].tolist() == [[1, 0, 1], [0, 1, 0]]


def test_a_missing_proposals_file_is_named(tmp_path):
    with pytest.raises(MissingInputError, match="proposals file .*dets.csv not found"):
        det.read_proposals(tmp_path / "dets.csv", {"v"}, 0.9)
    dets = tmp_path / "dets.csv"
    dets.write_text("v,0903,0.1,0.1,0.5,0.5,,0.95\nv,0903,0.1,0.1,0.5,0.5,,0.95\nv,0904,0.2,0.2,0.6,0.6,,0.5\n"
                    "w,0903,0.1,0.1,0.5,0.5,,0.99\n")
    kept = det.read_proposals(dets, {"v"}, 0.9)  # duplicate once, low score and other videos out
    assert kept[["video_id", "timestamp"]].values.tolist() == [["v", 903]]


def test_table5_at_full_scale_plans_the_papers_detection(tmp_path):
    """The full-scale dry run of Table 5: five detection evaluations at 8x8 from the 600-epoch
    pretrainings, with §4.4's 20 epochs, lr 0.1 and batch 64 for every row's recipe."""
    from core.config import load_scale, method_config
    from protocols.cli import protocol_settings
    from tests.test_dag import _failure, empty_layout
    from tests.test_mcl_init_dag import dry_run

    empty_layout(tmp_path, ["k400"])
    (tmp_path / "AVA").mkdir()
    proc = dry_run("tables/maclr_table5.md", "--config", "scale=full", f"data_root={tmp_path}")
    assert proc.returncode == 0, _failure(proc)
    commands = [line for line in proc.stdout.splitlines() if "-m protocols.detection " in line]
    assert len(commands) == 5 and all("manifests/ava.csv" in c for c in commands)
    # every row at 8x8: the 600-epoch rows, the scratch and the supervised K400 row through their
    # evaluation clip; the ImageNet row pretrains at MaCLR's 8x8 clip and is read at it
    assert [c for c in commands if "--clip 8x8" not in c] == [c for c in commands if "imagenet_inflated" in c]
    clip = method_config("maclr", "full", "maclr")["visual"]["clip"]
    assert (clip["num_frames"], clip["stride"]) == (8, 8)
    assert proc.stdout.count("on k400: 600 epochs") == 2  # MaCLR and V-only, the 600-epoch rows' pretrainings
    for owner in ("maclr", "supervised"):
        cfg, _ = protocol_settings(load_scale("full"), "detection", owner, "ava")
        assert (cfg["epochs"], cfg["lr"], cfg["batch_size"]) == (20, 0.1, 64) and cfg["proposals"]


def test_a_manifest_without_its_boxes_file_is_named(tmp_path):
    manifest = tmp_path / "ava.csv"
    manifest.write_text("video_id,path,label,label_name,split,num_frames,fps,width,height,duration\n")
    with pytest.raises(SystemExit, match=r"ava\.boxes\.csv: the manifest's evaluated boxes are missing"):
        det.main(["--checkpoint", str(tmp_path / "c.pt"), "--manifest", str(manifest), "--root", str(tmp_path),
                  "--out", str(tmp_path / "m.json")])
