"""Controllable Augmentations' seven tables at full scale, as a dry run on empty official layouts:
the paper's settings on each pretraining job's line (§4.2: Adam lr 1e-3, weight decay 1e-5, batch
128, 200 UCF101 epochs decayed at 150, 100 Kinetics-400 epochs decayed at 70; the ablations' 150
UCF101 epochs; Ours* 200 Kinetics-400 epochs; 16 x 112 x 112 clips, 224 x 224 and R3D-34 for
Table 1's scaling rows), every variant of Tables 4-7 once, and the Scratch R3D-18's seeded start."""
from datasets.sources.registry import DATASETS
from tests.test_dag import _failure, empty_layout, job_counts
from tests.test_mcl_init_dag import dry_run

TABLES = [f"tables/ctrlaug_table{i}.md" for i in range(1, 8)]


def test_ctrlaug_tables_at_full_scale_plan_the_paper_settings(tmp_path):
    empty_layout(tmp_path, ["ucf101_split1", "hmdb51_split1", "k400", "diving48"])
    (tmp_path / DATASETS["diving48"].directory).mkdir(exist_ok=True)  # its layout requires no file
    proc = dry_run(*TABLES, "--config", "scale=full", f"data_root={tmp_path}")
    assert proc.returncode == 0, _failure(proc)
    out = proc.stdout + proc.stderr
    counts = job_counts(out)
    # r3d18 on UCF101 and K400, Ours*, 224^2, R3D-34, and 19 ablation variants on UCF101.
    assert counts.get("pretrain") == 24, counts
    assert counts.get("random_start") == 1, counts
    recipe = "adam lr 0.001 wd 1e-05"
    assert (f"Controllable Augmentations r3d18 on ucf101_split1: 200 epochs (lr x0.1 at [150]), batch 128, {recipe}, "
            "r3d18 x1.0 16x1x112^2, K=4, global 16 frames T_v=8, objectives rc+mi+td, levels 4/2/4 in 32 groups, td head gru") in out
    assert f"Controllable Augmentations r3d18 on k400: 100 epochs (lr x0.1 at [70]), batch 128, {recipe}" in out
    assert f"Controllable Augmentations r3d18_200ep on k400: 200 epochs (lr x0.1 at [140]), batch 128, {recipe}" in out
    assert "Controllable Augmentations r3d18_res224 on k400: 100 epochs (lr x0.1 at [70]), batch 128" in out and "16x1x224^2" in out
    assert "Controllable Augmentations r3d34 on k400: 100 epochs (lr x0.1 at [70]), batch 128, adam lr 0.001 wd 1e-05, r3d34" in out
    assert ("Controllable Augmentations abl_k1_tv2 on ucf101_split1: 150 epochs (lr x0.1 at [150]), batch 128, "
            f"{recipe}, r3d18 x1.0 16x1x112^2, K=1, global 16 frames T_v=2, objectives rc+mi") in out
    assert "Controllable Augmentations abl_levels_5_2_5 on ucf101_split1: 150 epochs" in out and "levels 5/2/5 in 32 groups" in out
    assert "objectives nce, levels 4/2/4" in out and "td head vcop" in out and "td head gru_mlp" in out
    assert "random initialisation of r3d18 (seed 0), read as ctrlaug reads it" in out
    assert "protocols.finetune" in out and "Diving48" in out
