"""MaCLR's transfer beyond UCF101 and HMDB51 (§4.3): Something-Something V2 fine-tuning with
SlowFast's recipe (Table 4a), and VidSitu verb prediction on 2-second events with the official
verb metrics (Table 4b)."""
import numpy as np
import pytest
import torch

from core.config import load_scale
from core.errors import SuiteError
from datasets.clips.reader import in_video
from datasets.clips.sampling import ClipPlan, ClipSpec, plan_train_clip
from datasets.manifests.manifest import build_manifest, entries_for
from datasets.sources.fixtures_extra import make_vidsitu
from methods.training.optim import learning_rate
from methods.training.random_start import write_random_start
from protocols.cli import at_clip, protocol_settings
from protocols.finetune import evaluate, verb_metrics


def test_ssv2_fine_tunes_with_the_recipe_of_section_4_3_for_every_checkpoint():
    full = load_scale("full")
    for owner in ("maclr", "random_init", None):
        ssv2, recipe = protocol_settings(full, "finetune", owner, "ssv2")
        assert recipe == "shared"
        assert (ssv2["epochs"], ssv2["batch_size"], ssv2["lr"], ssv2["milestones"]) == (22, 16, 0.03, [14, 18])
        assert (ssv2["warmup_epochs"], ssv2["warmup_start_lr"], ssv2["flip_p"]) == (0.19, 0.0001, 0.0)
    ucf, _ = protocol_settings(full, "finetune", "maclr", "ucf101_split1")
    assert "per_dataset" not in ucf and "flip_p" not in ucf and ucf["epochs"] == 200  # other datasets keep the shared recipe
    smoke, _ = protocol_settings(load_scale("smoke"), "finetune", "maclr", "ssv2")
    assert smoke["flip_p"] == 0.0 and smoke["epochs"] == load_scale("smoke")["finetune"]["epochs"]


def test_ssv2_schedule_decays_tenfold_at_14_and_18_epochs():
    ssv2, _ = protocol_settings(load_scale("full"), "finetune", "maclr", "ssv2")
    cfg = {"lr": ssv2["lr"], "schedule": "step", "milestones": ssv2["milestones"], "warmup_epochs": ssv2["warmup_epochs"],
           "warmup_start_lr": ssv2["warmup_start_lr"]}
    at = {epoch: learning_rate(cfg, epoch * 100, 100, 2200) for epoch in (0, 1, 13, 14, 17, 18, 21)}
    assert at[0] == pytest.approx(0.0001)
    assert at[1] == at[13] == pytest.approx(0.03)
    assert at[14] == at[17] == pytest.approx(0.003) and at[18] == at[21] == pytest.approx(0.0003)


def test_no_flip_when_flip_p_is_zero_and_the_same_clips_otherwise():
    spec = ClipSpec(4, 2, 16, 20)
    plans = [plan_train_clip(40, (20, 26), spec, np.random.default_rng(k), flip_p=0.0) for k in range(50)]
    assert not any(p.flip for p in plans)
    default = [plan_train_clip(40, (20, 26), spec, np.random.default_rng(k)) for k in range(50)]
    assert any(p.flip for p in default)
    assert [(p.indices, p.crop) for p in plans] == [(p.indices, p.crop) for p in default]  # same draws otherwise


def _scores(orders: list[list[int]]) -> torch.Tensor:
    """Scores whose descending order over the classes is each row of `orders`."""
    scores = torch.zeros(len(orders), len(orders[0]))
    for i, order in enumerate(orders):
        for rank, cls in enumerate(order):
            scores[i, cls] = len(order) - rank
    return scores


def test_vidsitu_verb_metrics_by_hand():
    scores = _scores([[1, 0, 2, 3, 4, 5], [0, 5, 4, 3, 1, 2], [0, 1, 2, 3, 4, 5], [2, 0, 1, 3, 4, 5]])
    label_sets = [[1, 1, 2], [2, 2, 2, 0], [5, 5, -1], [2, 2]]
    got = verb_metrics(scores, label_sets, min_events=0)
    # Acc@1: any annotator's verb counts (event 1's top verb 0 was given once): events 0, 1, 3.
    # Acc@5: event 2's verbs (5 and one unknown to training) are outside its top 5.
    assert got["top1"] == pytest.approx(75.0) and got["top5"] == pytest.approx(75.0)
    # Rec@5 over verbs given by >= 2 annotators: verb 1 found 1/1, verb 2 1/2 (missed in event 1), verb 5 0/1.
    assert got["macro_recall_at_5"] == pytest.approx(100 * (1 + 0.5 + 0) / 3) and got["recall_verbs"] == 3
    only_frequent = verb_metrics(scores, label_sets, min_events=1)  # verbs with more than one such event
    assert only_frequent["macro_recall_at_5"] == pytest.approx(50.0) and only_frequent["recall_verbs"] == 1
    with pytest.raises(SuiteError, match="more than 2"):
        verb_metrics(scores, label_sets, min_events=2)


def test_vidsitu_fine_tunes_on_event_windows_and_reports_the_verb_metrics(tmp_path):
    root = tmp_path / "VidSitu"
    make_vidsitu(root, {"num_classes": 3, "segments": 4, "frames": 40, "height": 32, "width": 40, "fps": 4}, seed=0, bad=False)
    manifest, quarantine = build_manifest(entries_for("vidsitu", root), root, min_frames=8, verify=False)
    assert quarantine.empty and (manifest["num_frames"] == 8).all()  # each 2-second event: 8 of the segment's 40 frames
    checkpoint = torch.load(write_random_start("random_init", "default", "smoke", tmp_path / "ckpt"), weights_only=True)
    checkpoint = at_clip(checkpoint, {"num_frames": 8, "stride": 1})  # a clip spans its whole event
    cfg = {**load_scale("smoke")["finetune"], "epochs": 1, "temporal_views": 1, "spatial_views": 1}
    torch.set_num_threads(1)
    metrics = evaluate(checkpoint, manifest, root, None, cfg, seed=0)
    assert metrics["num_test_videos"] == 5 and metrics["recall_verbs"] >= 1
    assert all(0 <= metrics[k] <= 100 for k in ("top1", "top5", "macro_recall_at_5"))
    # a window's clip is its own frames: frame i of event k is frame 8 (k - 1) + i of the segment
    row = manifest[manifest["video_id"].str.endswith("_Ev3")].iloc[0]
    plan = ClipPlan(tuple(range(8)), (0, 0), False)
    assert in_video(row, plan).indices == tuple(range(16, 24))
