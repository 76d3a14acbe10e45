"""The mini scale's pieces: the shortcut fixture world, the seeds layout and the orderings verdicts."""
import math

import numpy as np
import pytest

from core.config import load_scale, method_config
from core.errors import ConfigError
from core.io import write_json
from core.seeds import profile_seeds, run_folders, seed_folder
from datasets.sources.synthetic import SHORTCUT_CLASSES, render_world_video, trajectory_classes, trajectory_path
from tables.orderings import Comparison, learning_verdict, main, ordering_verdict


def test_shortcut_videos_are_reproducible_and_appearance_is_per_video():
    a = render_world_video("shortcut", 3, 10, 16, 24, 32, seed=5)
    assert a.shape == (16, 24, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, render_world_video("shortcut", 3, 10, 16, 24, 32, seed=5))
    other_video = render_world_video("shortcut", 3, 10, 16, 24, 32, seed=6)  # same class, another appearance
    assert np.abs(a.astype(int) - other_video.astype(int)).mean() > 20


def test_world_options_set_objects_size_and_still_frames():
    """One object that never stops (the mini profile's world): every frame differs from the one
    before, while the default world holds a quarter of its frames still; the straight world takes
    no options."""
    options = {"num_objects": 1, "object_size": 0.5, "still_fraction": 0.0}
    video = render_world_video("shortcut", 0, 10, 24, 32, 48, seed=3, world_options=options).astype(int)
    moved = np.abs(np.diff(video, axis=0)).sum(axis=(1, 2, 3))
    assert (moved > 0).all()
    default = render_world_video("shortcut", 0, 10, 24, 32, 48, seed=3).astype(int)
    assert (np.abs(np.diff(default, axis=0)).sum(axis=(1, 2, 3)) == 0).sum() >= 24 // 4 - 1  # its still quarter
    with pytest.raises(ValueError, match="straight world takes no world_options"):
        render_world_video("straight", 0, 5, 8, 24, 32, seed=0, world_options=options)


def test_the_straight_world_is_the_default_and_unknown_worlds_are_refused():
    with pytest.raises(ValueError, match="unknown fixture world"):
        render_world_video("curved", 0, 5, 8, 24, 32, seed=0)
    with pytest.raises(ValueError, match="10 motion-defined classes"):
        trajectory_classes(11)


def test_trajectory_shapes():
    t = np.arange(48.0)
    start = np.array([10.0, 10.0])
    by_shape = {c.shape: c for c in reversed(SHORTCUT_CLASSES)}  # the first class of each shape
    circle = trajectory_path(by_shape["circle"], t, start, 0.0)
    assert np.allclose(np.linalg.norm(circle - start, axis=1), by_shape["circle"].amplitude)
    osc = by_shape["oscillate"]
    path = trajectory_path(osc, t, start, 0.0)
    assert np.allclose(path[int(osc.period)], path[0])  # periodic, no drift
    zig = by_shape["zigzag"]
    path = trajectory_path(zig, t, start, 0.0)
    assert path[-1, 1] - path[0, 1] == pytest.approx(zig.speed * 47)  # drifts right, zig-zags across


def test_classes_are_not_separated_by_mean_speed():
    """Mean speeds (pixels per frame) of the classes overlap: several shapes share about 2 px/frame."""
    t = np.arange(48.0)
    speeds = [np.linalg.norm(np.diff(trajectory_path(c, t, np.zeros(2), 0.0), axis=0), axis=1).mean() for c in SHORTCUT_CLASSES]
    assert sum(1.8 <= s <= 2.8 for s in speeds) >= 6


def test_mini_profile_has_enough_test_videos_and_seeds():
    mini = load_scale("mini")
    ucf = mini["fixtures"]["ucf101"]
    test_videos = round(ucf["num_classes"] * ucf["videos_per_class"] * 21 / 63)  # groups g01-g07 of g01-g21
    assert 100 / test_videos <= 0.5
    assert profile_seeds(mini) == [0, 1, 2]
    assert profile_seeds(load_scale("smoke")) is None  # single-seed profiles keep their paths
    assert method_config("maclr", "mini", "random_init")["epochs"] == {"k400_mini": 0, "k400": 0}


def test_seed_folders():
    assert seed_folder(None) == "" and seed_folder("2") == "/seed2"
    assert run_folders("r/eval/m/v/p", {"seeds": [0, 1]}) == ["r/eval/m/v/p/seed0", "r/eval/m/v/p/seed1"]
    assert run_folders("r/eval/m/v/p", {}) == ["r/eval/m/v/p"]
    with pytest.raises(ConfigError, match="seeds"):
        profile_seeds({"seeds": [], "scale": "x"})


def test_ordering_verdicts():
    spec = {"learning_check": {"min_points": 15, "min_spreads": 3}}
    holds = Comparison([50.0, 52.0, 54.0], [40.0, 41.0, 45.0])  # differences 10, 11, 9
    assert holds.difference == pytest.approx(10.0) and holds.spread == pytest.approx(1.0)
    assert ordering_verdict(holds) == "holds"
    assert ordering_verdict(Comparison([40.0, 41.0, 45.0], [50.0, 52.0, 54.0])) == "reversed"
    assert ordering_verdict(Comparison([50.0, 40.0, 45.0], [45.0, 45.0, 45.0])) == "not resolved"
    assert ordering_verdict(Comparison([90.0], [10.0])) == "not resolved"  # one seed: no spread
    assert learning_verdict(holds, spec) == "fails"  # 10 points < 15
    assert learning_verdict(Comparison([60.0, 62.0, 64.0], [40.0, 41.0, 45.0]), spec) == "passes"
    assert learning_verdict(Comparison([60.0, 30.0, 64.0], [10.0, 10.0, 10.0]), spec) == "fails"  # 3 spreads not met
    assert not math.isnan(holds.difference)


def test_orderings_report_from_metrics_files(tmp_path):
    """The report reads each seed's metrics file and nothing else; the rows of the built methods need
    every seed's metrics file of both sides, HCML Table 2's rows under their own evaluation (joint_train
    from scratch, the single-clip test)."""
    top1 = {("maclr", "maclr"): lambda s: 60.0 + s, ("maclr", "v_only"): lambda s: 40.0 + s,
            ("maclr", "flow"): lambda s: 50.0 + 2 * s, ("maclr", "diff"): lambda s: 50.0,
            ("maclr", "random_init"): lambda s: 10.0,
            ("mcl", "ta_sa_mal"): lambda s: 30.0 + s, ("mcl", "ta_sa"): lambda s: 20.0,
            ("mcl", "baseline"): lambda s: 22.0 - s, ("mcl", "random_init"): lambda s: 4.0 + 9 * s,
            ("cmd", "full_c3d"): lambda s: 30.0, ("cmd", "context_only_c3d"): lambda s: 34.0 + s,
            ("cmd", "motion_only_c3d"): lambda s: 20.0 + s, ("cmd", "random_init"): lambda s: 12.0,
            ("ctrlaug", "rc_mi_td"): lambda s: 40.0 + s, ("ctrlaug", "nce"): lambda s: 30.0 + s,
            ("ctrlaug", "random_init"): lambda s: 12.0,
            ("hcml", "pmb_selfsup"): lambda s: 25.0 + s, ("hcml", "random_init"): lambda s: 10.0}
    for (method, variant), value in top1.items():
        for seed in (0, 1, 2):
            write_json(tmp_path / f"eval/{method}/{variant}/k400_mini/seed{seed}/linear/ucf101_split1.json",
                       {"top1": value(seed), "top5": 90.0, "num_test_videos": 210, "num_train_videos": 420, "num_classes": 10,
                        "views": "4x1", "scale": "mini", "protocol": "linear", "seed": seed})
    single = {"pmb_selfsup": 50.0, "pmb": 40.0, "baseline": 45.0}
    for variant, value in single.items():
        for seed in (0, 1, 2):
            write_json(tmp_path / f"eval/hcml/{variant}/none/seed{seed}/joint_train/ucf101_split1.json",
                       {"top1": 0.0, "top5": 0.0, "top1_single_clip": value + seed, "top5_single_clip": 90.0,
                        "num_test_videos": 210, "views": "4x1", "scale": "mini", "protocol": "joint_train", "seed": seed})
    main(["--scale", "mini", "--results", str(tmp_path), "--out", str(tmp_path / "orderings")])
    text = (tmp_path / "orderings.md").read_text()
    assert "| MaCLR | Table 1a | MaCLR > V-only | 61.0 ± 1.0 | 41.0 ± 1.0 | +20.0 | 0.0 | 3 | holds |" in text
    assert "| MaCLR | Table 1b | Edge > Flow | 61.0 ± 1.0 | 52.0 ± 2.0 | +9.0 | 1.0 | 3 | holds |" in text
    assert "| MaCLR | Table 1b | Flow > Diff | 52.0 ± 2.0 | 50.0 ± 0.0 | +2.0 | 2.0 | 3 | not resolved |" in text
    assert "| MCL | Table 1 | TA+SA+L_MAL > TA+SA | 31.0 ± 1.0 | 20.0 ± 0.0 | +11.0 | 1.0 | 3 | holds |" in text
    assert "| MCL | Table 1 | TA+SA > baseline | 20.0 ± 0.0 | 21.0 ± 1.0 | -1.0 | 1.0 | 3 | not resolved |" in text
    assert "| CMD | Table 4 | I-frames + motion vectors > I-frames only | 30.0 ± 0.0 | 35.0 ± 1.0 | -5.0 | 1.0 | 3 | reversed |" in text
    # HCML Table 2 compares training with labels from scratch: its own evaluation, named in the row
    table2 = "| HCML | Table 2 (joint_train top1_single_clip on ucf101_split1, from scratch) |"
    assert f"{table2} PMB + Self-Sup > PMB | 51.0 ± 1.0 | 41.0 ± 1.0 | +10.0 | 0.0 | 3 | holds |" in text
    assert f"{table2} PMB > baseline | 41.0 ± 1.0 | 46.0 ± 1.0 | -5.0 | 0.0 | 3 | reversed |" in text
    assert "HCML > random init | 26.0 ± 1.0 | 10.0 ± 0.0 | +16.0 | 1.0 | 3 | passes |" in text
    assert "| Controllable Augmentations | Table 7 | L_rc + L_mi + L_td > L_nce | 41.0 ± 1.0 | 31.0 ± 1.0 | +10.0 | 0.0 | 3 | holds |" in text
    assert "MaCLR > random init | 61.0 ± 1.0 | 10.0 ± 0.0 | +51.0 | 1.0 | 3 | passes |" in text
    # 18 points over random init, but the per-seed differences (26, 18, 10) spread by 8: fewer than 3 spreads
    assert "MCL > random init | 31.0 ± 1.0 | 13.0 ± 9.0 | +18.0 | 8.0 | 3 | fails |" in text
    assert (tmp_path / "orderings.png").stat().st_size > 0 and (tmp_path / "orderings.csv").exists()


def test_supervised_upper_bound_runs_on_the_profile_world(tmp_path):
    """The benchmark that tells whether a network can learn a world with labels: a few steps of the
    reference network on a handful of the mini world's videos produce a well-formed report."""
    from benchmarks.supervised_upper_bound import main as upper_bound

    result = upper_bound(["--scale", "mini", "--backbone", "reference3d", "--steps", "2", "--videos", "40",
                          "--batch-size", "4", "--out", str(tmp_path / "bound.json")])
    assert result["train_videos"] == 30 and result["test_videos"] == 10  # every fourth round of 10 classes held out
    assert 0.0 <= result["test_top1"] <= 100.0 and result["chance"] == 10.0
    assert (tmp_path / "bound.json").exists()
