"""HCML's seven tables at full scale, as a dry run on empty official layouts: the paper's settings on
each job's line (R2D-50 16 x 2 and R(2+1)D-101 32-frame clips at 224, batch 64, 80 self-supervised
epochs on K400), the seeded starts behind every "trained from scratch" row, and the recipes the
protocols read at full scale (suppl. D.2)."""
from core.config import load_scale
from protocols.cli import protocol_settings
from tests.test_dag import _failure, empty_layout, job_counts
from tests.test_mcl_init_dag import dry_run

TABLES = [f"tables/hcml_table{i}.md" for i in range(1, 8)]


def test_hcml_tables_at_full_scale_plan_the_paper_settings(tmp_path):
    empty_layout(tmp_path, ["ucf101_split1", "ucf101_split2", "ucf101_split3", "k400", "ssv1", "ssv2"])
    for folder in ("SomethingSomethingV1", "SomethingSomethingV2"):  # their layouts name no required file
        (tmp_path / folder).mkdir(exist_ok=True)
    proc = dry_run(*TABLES, "--config", "scale=full", f"data_root={tmp_path}")
    assert proc.returncode == 0, _failure(proc)
    out = proc.stdout + proc.stderr
    counts = job_counts(out)
    assert counts.get("pretrain") == 2, counts  # Tables 4 and 7: the K400 self-supervised runs of both backbones
    # 6 Table 2 variants, 2 Table 4 random starts are Table 2's pmb_selfsup ones, 3 efficacy, 3 kNN levels
    assert counts.get("random_start") == 12, counts
    # and Table 7's fine-tunings on UCF101 splits 2 and 3 (split 1's is Table 4's), averaged in one job
    assert counts.get("evaluate") == 32 and counts.get("evaluate_split_average") == 1, counts
    assert ("HCML pmb_selfsup on k400: 80 epochs over levels [1, 1, 1], batch 64, r2d50_hcml_pmb x1.0 16x2x224^2, "
            "PMB + self-supervision (Eq. 2-4)") in out
    assert "HCML pmb_selfsup_r2plus1d101 on k400: 80 epochs over levels [1, 1, 1], batch 64, r2plus1d101_hcml_pmb x1.0 32x2x224^2" in out
    assert "HCML baseline: r2d50_hcml x1.0 at its seeded random start (baseline, no PMB)" in out
    assert "-m protocols.joint_train" in out and "-m protocols.efficacy" in out and "-m protocols.knn_motion" in out


def test_hcml_protocol_recipes_at_full_scale():
    profile = load_scale("full")
    k400, recipe = protocol_settings(profile, "joint_train", "hcml", "k400")
    assert recipe == "hcml"
    assert (k400["ss_epochs"], k400["ss_warmup_epochs"], k400["joint_epochs"], k400["joint_warmup_epochs"]) == (80, 10, 200, 40)
    assert (k400["temporal_views"], k400["spatial_views"], k400["test_crop_size"]) == (10, 3, 256)  # §4.2: 30 clips at 256^2
    assert k400["lr"] == 0.0025 * k400["batch_size"] / 8
    ssv1, _ = protocol_settings(profile, "joint_train", "hcml", "ssv1")
    assert ssv1["clip"] == {"num_frames": 32, "stride": 1}
    assert (ssv1["joint_epochs"], ssv1["joint_warmup_epochs"], ssv1["temporal_views"], ssv1["spatial_views"]) == (150, 50, 3, 3)
    knn, _ = protocol_settings(profile, "knn_motion", "hcml", "ssv1")
    assert knn["clip"] == ssv1["clip"] and knn["k"] == 10
    ucf, _ = protocol_settings(profile, "finetune", "hcml", "ucf101_split1")
    assert (ucf["epochs"], ucf["batch_size"], ucf["lr"]) == (30, 32, 0.002)  # D.2, UCF101
