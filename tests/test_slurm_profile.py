"""The SLURM profile (config/profiles/slurm): a full-scale dry run of MaCLR Tables 1 and 3 through
snakemake-executor-plugin-slurm declares each job's resources from config/scales/full.yaml, GPUs on
every pretraining and evaluation (linear probe and fine-tuning) job; pretraining starts one process
per GPU the job sees (core/launch.py)."""
import re
import sys

from core.launch import command
from tests.test_dag import _failure, dry_run, empty_layout, job_counts


def test_full_scale_dry_run_with_the_slurm_profile_gives_gpus_to_pretraining_and_finetuning(tmp_path):
    empty_layout(tmp_path, ["ucf101_split1", "hmdb51_split1", "k400"])
    proc = dry_run("tables/maclr_table1.md", "tables/maclr_table3.md", "--profile", "config/profiles/slurm",
                   "--config", "scale=full", f"data_root={tmp_path}", "gpu_partition=gpu", "partition=cpu", quiet="host")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, _failure(proc)
    counts = job_counts(out)
    # Table 1's ten MaCLR runs, Table 3's R3D-18 variant and its supervised K400 baseline
    pretrain = re.findall(r"^Job \d+: MaCLR .*; job: (\d+) GPU\(s\), (\d+) CPUs, (\d+) MB, (\d+) min$", out, re.M)
    assert len(pretrain) == 11 and counts["pretrain"] == 12
    assert set(pretrain) == {("8", "32", "256000", "4320")}  # full.yaml resources.pretrain
    assert len(re.findall(r"core\.launch --gpus 8 -m methods\.training\.pretrain", out)) == 12
    blocks = [b for b in out.split("\n\n") if re.search(r"^rule evaluate:", b, re.M)]
    assert len(blocks) == counts["evaluate"] == 43  # 20 linear probes, 2 retrievals, 21 low-shot fine-tunings
    assert sum("/lowshot/" in b for b in blocks) == 21
    for block in blocks:
        assert re.search(r"resources: .*cpus_per_task=8, gpu=1, slurm_partition=gpu, mem_mb=64000", block), block
    for rule in ("manifest", "table"):  # CPU jobs go to the CPU partition
        block = next(b for b in out.split("\n\n") if re.search(rf"^rule {rule}:", b, re.M))
        assert re.search(r"gpu=0, slurm_partition=cpu", block), block


def test_pretraining_starts_one_process_per_gpu_it_sees():
    args = ["-m", "methods.training.pretrain", "--method", "maclr"]
    assert command(8, 8, args) == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=8", *args]
    assert command(8, 2, args)[4] == "--nproc_per_node=2"  # fewer GPUs than asked: the ones it has
    assert command(8, 0, args) == [sys.executable, *args]  # no GPU: one process on the CPU
    assert command(1, 1, args) == [sys.executable, *args]
