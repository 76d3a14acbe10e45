"""MCL's ImageNet MoCo start through the DAG: at full scale the pretraining rule passes the weights
file (--config mcl_init_weights=PATH, else <data_root>/pretrained/moco_v2_200ep_pretrain.pth.tar) as
--init-weights; a dry run without the file lists rule `init_weights` for it, and a run stops there
with one message naming the path and the config key. Smoke stays at the seeded start."""
import re
import subprocess
import sys

from tests.conftest import ROOT, repository_copy
from tests.test_dag import _failure, empty_layout, job_counts

R2PLUS1D = "results/{scale}/pretrain/mcl/r2plus1d_full/ucf101_split1/checkpoint.pt"
S3D = "results/{scale}/pretrain/mcl/s3d_full/ucf101_split1/checkpoint.pt"
WEIGHTS_NAME = "moco_v2_200ep_pretrain.pth.tar"


def dry_run(*args: str) -> subprocess.CompletedProcess:
    """A dry run that prints each job's line and shell command."""
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "-p", "--nolock", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def pretrain_commands(output: str) -> dict[str, str]:
    """variant -> the shell command of its pretraining job, from a dry run with -p."""
    return {m.group(1): line for line in output.splitlines()
            if (m := re.search(r"-m methods\.training\.pretrain --method mcl --variant (\w+)", line))}


def test_full_scale_passes_the_weights_file_from_the_config_key(tmp_path):
    empty_layout(tmp_path, ["ucf101_split1"])
    weights = tmp_path / "moco.pth"
    weights.write_bytes(b"")
    proc = dry_run(R2PLUS1D.format(scale="full"), S3D.format(scale="full"), "--config", "scale=full",
                   f"data_root={tmp_path}", f"mcl_init_weights={weights}")
    assert proc.returncode == 0, _failure(proc)
    out = proc.stdout + proc.stderr
    commands = pretrain_commands(out)
    assert f"--init-weights {weights}" in commands["r2plus1d_full"]
    assert "--init-weights" not in commands["s3d_full"]  # no ImageNet MoCo weights fit S3D
    assert "init_weights" not in job_counts(out)
    # the job's line names the initialisation
    assert f"init imagenet_moco_inflated ({WEIGHTS_NAME})" in out and "s3d x1.0 16x2x224^2, init scratch" in out


def test_full_scale_without_the_file_lists_the_job_that_stands_for_it(tmp_path):
    empty_layout(tmp_path, ["ucf101_split1"])
    proc = dry_run(R2PLUS1D.format(scale="full"), "--config", "scale=full", f"data_root={tmp_path}")
    assert proc.returncode == 0, _failure(proc)
    out = proc.stdout + proc.stderr
    default = tmp_path / "pretrained" / WEIGHTS_NAME
    counts = job_counts(out)
    assert counts.get("init_weights") == 1 and counts.get("pretrain") == 1, counts
    assert f"--init-weights {default}" in pretrain_commands(out)["r2plus1d_full"]
    assert f"missing weights file {default}" in out and "mcl_init_weights=PATH" in out


def test_a_run_without_the_file_stops_with_the_path_and_the_config_key(tmp_path):
    work = repository_copy(tmp_path / "repo")
    data_root = tmp_path / "data"
    target = data_root / "pretrained" / WEIGHTS_NAME
    proc = subprocess.run([sys.executable, "-m", "snakemake", str(target), "--cores", "1", "--config", "scale=full",
                           f"data_root={data_root}"], cwd=work, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert (f"error: mcl pretraining at scale full starts from the weights file {target}, which is not there" in out
            and "--config mcl_init_weights=PATH" in out), out[-3000:]
    assert "Traceback" not in out


def test_smoke_scale_starts_from_the_seed():
    proc = dry_run(R2PLUS1D.format(scale="smoke"), "--forcerun", "pretrain")
    assert proc.returncode == 0, _failure(proc)
    out = proc.stdout + proc.stderr
    assert "--init-weights" not in pretrain_commands(out)["r2plus1d_full"]
    assert ", init scratch, " in out and "init_weights" not in job_counts(out)
