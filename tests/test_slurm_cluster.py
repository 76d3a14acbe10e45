"""A real one-node SLURM cluster (tests/slurm/cluster.sh: munge, slurmctld, slurmd for this
machine's CPUs and memory) runs part of the smoke DAG of MaCLR Table 1 through
snakemake-executor-plugin-slurm with config/profiles/slurm: the K400 MaCLR pretraining, its two
linear probes and the table. The pretraining job is cancelled by the scheduler (scancel) once it has
written last.pt; the profile resubmits it and it resumes from there. The table equals the one of
the local run. Skips only where the daemons cannot start at all (cluster.sh says why)."""
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import ROOT, repository_copy, run_env
from tests.test_dag import job_counts

CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
TARGET = "tables/maclr_table1.md"
RUN = "maclr/maclr/k400"  # the run SLURM makes again: one pretraining, two probes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    state = tmp_path_factory.mktemp("slurm")
    started = subprocess.run([str(CLUSTER), "start", str(state)], capture_output=True, text=True)
    if started.returncode == 77:
        pytest.skip(started.stderr.strip())
    assert started.returncode == 0, started.stdout + started.stderr
    yield state
    subprocess.run([str(CLUSTER), "stop", str(state)], check=True)


def snakemake(cwd, *args, **kwargs):
    cmd = [sys.executable, "-m", "snakemake", TARGET, "--config", "scale=smoke", *args]
    return subprocess.run(cmd, cwd=cwd, env=run_env(), capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def local_table():
    """The local smoke run's table (made by tests/test_smoke_dag.py, or here)."""
    done = snakemake(ROOT, "--cores", "2", "--quiet", "rules")
    assert done.returncode == 0, done.stderr[-3000:]
    return pd.read_csv(ROOT / "tables/maclr_table1.csv")


def squeue_job(rule):
    """The id of the queued or running job of `rule` (the plugin puts the rule in the job's comment)."""
    listed = subprocess.run(["squeue", "-h", "-o", "%i %k %T"], capture_output=True, text=True, check=True).stdout
    return next((line.split()[0] for line in listed.splitlines() if f"rule_{rule}" in line and "RUNNING" in line), None)


@pytest.mark.smoke
def test_slurm_run_with_a_cancelled_pretraining_gives_the_local_table(cluster, local_table, tmp_path):
    repo = repository_copy(tmp_path / "repo")
    shutil.copytree(ROOT / "results/smoke", repo / "results/smoke", symlinks=True)  # keeps mtimes: nothing else re-runs
    shutil.rmtree(repo / f"results/smoke/pretrain/{RUN}")
    for metrics in (repo / f"results/smoke/eval/{RUN}/linear").glob("*.json"):
        metrics.unlink()
    plan = snakemake(repo, "-n", "--quiet", "rules")
    assert job_counts(plan.stdout + plan.stderr) == {"pretrain": 1, "evaluate": 2, "table": 1}, plan.stdout[-3000:]

    cmd = [sys.executable, "-m", "snakemake", TARGET, "--config", "scale=smoke", "--profile", "config/profiles/slurm",
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1"]
    run = subprocess.Popen(cmd, cwd=repo, env=run_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    last = repo / f"results/smoke/pretrain/{RUN}/last.pt"
    try:
        deadline = time.monotonic() + 300
        while not last.exists() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        job = squeue_job("pretrain")
        assert job and not (last.parent / "checkpoint.pt").exists(), "the pretraining job was not running with a last.pt"
        subprocess.run(["scancel", job], check=True)  # the scheduler kills it mid-pretraining
        output, _ = run.communicate(timeout=600)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, output[-5000:]
    log = (repo / "results/smoke/logs/pretrain_maclr_maclr_k400.log").read_text()
    assert f"resuming {last.parent.relative_to(repo)} from epoch" in log, log[-2000:]  # the resubmitted job
    table = pd.read_csv(repo / "tables/maclr_table1.csv")
    pd.testing.assert_frame_equal(table, local_table)
