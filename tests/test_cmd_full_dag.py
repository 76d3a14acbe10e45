"""CMD's nine tables at full scale, as a dry run on empty official layouts: the paper's settings on
each job's line (batch 64 on UCF101, 512 on Kinetics-400, 16 x 4 clips at 112), the MPEG-4
transcode and compressed-domain extraction every CMD input depends on, and the Scratch and Table 6
runs from their seeded starts (CMD's evaluation recipes: tests/test_finetune_points.py)."""
import re

from tests.test_dag import _failure, empty_layout, job_counts
from tests.test_mcl_init_dag import dry_run

TABLES = [f"tables/cmd_table{i}.md" for i in range(1, 10)]


def test_cmd_tables_at_full_scale_plan_the_paper_settings(tmp_path):
    empty_layout(tmp_path, ["ucf101_split1", "hmdb51_split1", "k400"])
    proc = dry_run(*TABLES, "--config", "scale=full", f"data_root={tmp_path}")
    assert proc.returncode == 0, _failure(proc)
    out = proc.stdout + proc.stderr
    counts = job_counts(out)
    # UCF101: 3 full backbones + 4 Table 1 + 3 Table 4 rows; K400: the 3 full backbones.
    assert counts.get("pretrain") == 13, counts
    assert counts.get("random_start") == 6, counts  # 3 Scratch baselines, 3 Table 6 regularised runs
    assert counts.get("cmd_compressed") == 3 and counts.get("transcode", 0) >= 3, counts  # every CMD input set
    assert counts.get("evaluate_pretext") == 1, counts
    assert "CMD full_c3d on ucf101_split1: 120 epochs, batch 64, V c3d x1.0 16x4x112^2" in out
    assert "CMD full_r3d26_k400 on k400: 120 epochs, batch 512, V r3d26 x1.0 16x4x112^2" in out
    assert "CMD mp_regularizer_c3d: c3d at its seeded random start, fine-tuned with Eq. (2) weighted 0.2" in out
    assert re.search(r"transcode.*mpeg4_gop12|mpeg4_gop12.*transcode", out, re.S)
