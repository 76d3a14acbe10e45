"""The shared training engine: schedules and optimizers by hand, stages and several optimizers on
a toy task, the non-finite stop, resume that is bit-identical after a kill, resume state tied to
its inputs, and a new method folder that needs no other file."""
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from core.errors import ConfigError, SuiteError
from methods.training.contrastive import MLPHead, gather_from_all, grouped_forward, shuffled_forward
from methods.training.engine import RunSettings, fit
from methods.training.method import Stage, TrainingTask
from methods.training.optim import build_optimizer, learning_rate
from methods.training.registry import method_class, method_names
from tests.conftest import assert_same_weights, pretrain_command, repository_copy, run_env, weights

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- schedules and optimizers
def test_warmup_then_cosine_by_hand():
    cfg = {"lr": 1.0, "warmup_epochs": 1, "schedule": "cosine"}
    # 4 steps per epoch, 12 in all: warm-up lr*(step+1)/4, then cosine over the other 8 steps.
    assert [learning_rate(cfg, s, 4, 12) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert learning_rate(cfg, 8, 4, 12) == pytest.approx(0.5)  # half way through the cosine
    assert learning_rate(cfg, 12, 4, 12) == pytest.approx(0.0, abs=1e-12)


def test_warmup_from_a_start_lr_and_step_decay_by_hand():
    cfg = {"lr": 0.1, "warmup_start_lr": 0.01, "warmup_epochs": 1, "schedule": "step", "milestones": [2, 3], "gamma": 0.1}
    assert learning_rate(cfg, 0, 10, 40) == pytest.approx(0.01)
    assert learning_rate(cfg, 5, 10, 40) == pytest.approx(0.055)
    assert learning_rate(cfg, 19, 10, 40) == pytest.approx(0.1)  # epoch 1.9
    assert learning_rate(cfg, 20, 10, 40) == pytest.approx(0.01)  # epoch 2: first decay
    assert learning_rate(cfg, 35, 10, 40) == pytest.approx(0.001)  # epoch 3.5: second decay
    assert learning_rate({"lr": 0.3, "schedule": "constant"}, 7, 10, 40) == 0.3
    with pytest.raises(ConfigError, match="schedule"):
        learning_rate({"lr": 0.1, "schedule": "linear"}, 0, 10, 40)


def test_optimizers_from_config():
    params = [nn.Parameter(torch.zeros(2))]
    sgd = build_optimizer(params, {"name": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4})
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["nesterov"] and sgd.defaults["weight_decay"] == 1e-4
    adam = build_optimizer(params, {"name": "adam", "lr": 1e-3, "betas": [0.5, 0.9]})
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["betas"] == (0.5, 0.9)
    with pytest.raises(ConfigError, match="optimizer.name"):
        build_optimizer(params, {"name": "lamb", "lr": 0.1})


# ---------------------------------------------------------------- a toy task
class Pairs(torch.utils.data.Dataset):
    def __init__(self, n=16):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, 4, generator=g), torch.randn(n, 1, generator=g)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


class Toy(TrainingTask):
    def __init__(self, stages=None, groups=None, loss=None):
        super().__init__()
        torch.manual_seed(0)
        self.lower, self.upper = nn.Linear(4, 4), nn.Linear(4, 1)
        self._stages, self._groups, self._loss = stages, groups, loss

    def forward(self, batch):
        error = self.upper(self.lower(batch["x"])) - batch["y"]
        return self._loss(error) if self._loss else {"mse": error.pow(2).mean()}

    def stages(self, epochs):
        return self._stages or super().stages(epochs)

    def optimizer_groups(self):
        if self._groups:
            return {name: list(getattr(self, module).parameters()) for name, module in self._groups.items()}
        return super().optimizer_groups()


def settings(epochs=2, **extra):
    return RunSettings(epochs=epochs, batch_size=4, optimizer={"name": "sgd", "lr": 0.1, "schedule": "constant"}, **extra)


def snapshot(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def test_a_stage_trains_only_its_submodules():
    task = Toy(stages=[Stage("upper only", 1, ("upper",))])
    before = snapshot(task)
    fit(task, Pairs(), settings(epochs=1))
    after = snapshot(task)
    assert torch.equal(before["lower.weight"], after["lower.weight"])
    assert not torch.equal(before["upper.weight"], after["upper.weight"])
    assert all(p.requires_grad for p in task.upper.parameters()) and not any(p.requires_grad for p in task.lower.parameters())
    # A second stage that trains everything moves the lower layer too.
    task = Toy(stages=[Stage("upper only", 1, ("upper",)), Stage("all", 1)])
    before = snapshot(task)
    fit(task, Pairs(), settings(epochs=2))
    assert not torch.equal(before["lower.weight"], snapshot(task)["lower.weight"])


def test_an_evaluation_point_after_each_epoch_leaves_the_training_unchanged():
    class Dropped(Toy):  # dropout: the training draws from the global random stream
        def forward(self, batch):
            error = self.upper(nn.functional.dropout(self.lower(batch["x"]), 0.5, self.training)) - batch["y"]
            return {"mse": error.pow(2).mean()}

    plain = Dropped()
    torch.manual_seed(1)
    fit(plain, Pairs(), settings(epochs=3))
    seen, evaluated = [], Dropped()

    def evaluation_point(epochs_done):  # what a protocol's evaluation does: eval mode, random draws
        seen.append(epochs_done)
        evaluated.eval()
        torch.rand(100)

    torch.manual_seed(1)
    fit(evaluated, Pairs(), settings(epochs=3), on_epoch_end=evaluation_point)
    assert seen == [1, 2, 3]
    assert all(torch.equal(a, b) for a, b in zip(snapshot(plain).values(), snapshot(evaluated).values()))


def test_stages_must_cover_the_epochs():
    with pytest.raises(ConfigError, match="do not add up"):
        fit(Toy(stages=[Stage("one", 1)]), Pairs(), settings(epochs=2))


def test_several_optimizers_each_with_its_own_settings(tmp_path):
    task = Toy(groups={"lower": "lower", "upper": "upper"})
    before = snapshot(task)
    fit(task, Pairs(), settings(optimizers={"upper": {"lr": 0.0}}), tmp_path)
    after = snapshot(task)
    assert torch.equal(before["upper.weight"], after["upper.weight"]) and not torch.equal(before["lower.weight"], after["lower.weight"])
    log = pd.read_csv(tmp_path / "log.csv")
    assert (log["lr_upper"] == 0).all() and (log["lr_lower"] == 0.1).all() and len(log) == 8
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["steps"] == 8 and summary["clips_per_second"] > 0 and len(summary["seconds_per_epoch"]) == 2
    assert summary["peak_memory_mb"] > 0 and (tmp_path / "curve.png").stat().st_size > 0


def test_bf16_is_a_cuda_switch_and_the_cpu_runs_fp32(tmp_path):
    summary = fit(Toy(), Pairs(), settings(epochs=1, bf16=True), tmp_path)
    assert summary["bf16"] is (summary["device"].startswith("cuda"))


def test_a_non_finite_loss_stops_the_run_naming_step_and_terms():
    def loss(error):
        return {"finite": error.pow(2).mean(), "broken": error.sum() * float("nan")}

    with pytest.raises(SuiteError, match=r"epoch 0 step 0 .*finite = [\d.]+.*broken = nan"):
        fit(Toy(loss=loss), Pairs(), settings())


def test_gradient_clipping_bounds_the_update():
    def loss(error):
        return {"huge": 1e6 * error.pow(2).mean()}

    task = Toy(loss=loss)
    before = snapshot(task)
    fit(task, Pairs(4), RunSettings(epochs=1, batch_size=4, optimizer={"name": "sgd", "lr": 1.0, "schedule": "constant"},
                                   grad_clip_norm=1.0))
    moved = torch.cat([(snapshot(task)[k] - before[k]).flatten() for k in before])
    assert moved.norm() <= 1.0 + 1e-5  # one SGD step of lr 1 with a gradient norm clipped to 1


def test_contrastive_parts_on_one_process():
    head = MLPHead(8, 16, 4, layers=2)
    assert [type(m).__name__ for m in head] == ["Linear", "ReLU", "Linear"] and head(torch.zeros(3, 8)).shape == (3, 4)
    x = torch.arange(6.0).view(3, 2)
    assert torch.equal(gather_from_all(x), x)
    identity = nn.ModuleDict({"a": nn.Identity()})
    assert torch.equal(shuffled_forward(lambda clips: {k: identity[k](v) for k, v in clips.items()}, {"a": x})["a"], x)


def _sub_batch_mean(clips: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A stand-in for batch norm's statistics: each clip's output is the mean of its forward's batch."""
    return {k: v.mean(0, keepdim=True).expand_as(v) for k, v in clips.items()}


def test_grouped_forward_computes_statistics_per_sub_batch():
    x = torch.arange(8.0).view(8, 1)
    assert torch.equal(grouped_forward(_sub_batch_mean, {"a": x}, 1)["a"], torch.full((8, 1), 3.5))
    # Two sub-batches, as two processes: 0..3 and 4..7.
    assert grouped_forward(_sub_batch_mean, {"a": x}, 2)["a"].flatten().tolist() == [1.5] * 4 + [5.5] * 4
    with pytest.raises(ValueError, match="must divide the batch of 8"):
        grouped_forward(_sub_batch_mean, {"a": x}, 3)


def test_shuffled_forward_on_one_process_encodes_keys_in_shuffled_sub_batches():
    """MoCo's shuffling BN with sub-batches standing for processes: each key's statistics come from a
    shuffled sub-batch (not the consecutive one its query is encoded in), and keys come back in order."""
    x = torch.arange(8.0).view(8, 1)
    torch.manual_seed(0)
    permutation = torch.randperm(8)
    torch.manual_seed(0)
    keys = shuffled_forward(_sub_batch_mean, {"a": x}, 2)["a"].flatten()
    groups = [permutation[:4], permutation[4:]]
    expected = torch.empty(8)
    for group in groups:
        expected[group] = x[group].mean()
    assert torch.equal(keys, expected)
    assert sorted(set(groups[0].tolist())) != [0, 1, 2, 3]  # seed 0 mixes the two query sub-batches
    # An encoder without batch statistics sees no difference.
    torch.manual_seed(1)
    assert torch.equal(shuffled_forward(lambda c: {k: 2 * v for k, v in c.items()}, {"a": x}, 4)["a"], 2 * x)


# ---------------------------------------------------------------- MaCLR pretraining, killed and resumed
def test_killed_pretraining_resumes_to_identical_weights(tiny_k400, uninterrupted, tmp_path):
    base, root = tiny_k400
    out = tmp_path / "killed"
    proc = subprocess.Popen(pretrain_command(base, root, out), cwd=ROOT, env=run_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "last.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # killed, not asked to stop
    proc.wait()
    assert (out / "last.pt").exists() and not (out / "checkpoint.pt").exists(), "the run ended before it could be killed"
    stopped_at = torch.load(out / "last.pt", weights_only=True)["epoch"]
    assert 1 <= stopped_at < 6
    resumed = subprocess.run(pretrain_command(base, root, out), cwd=ROOT, env=run_env(), check=True, capture_output=True, text=True)
    assert f"from epoch {stopped_at} of 6" in resumed.stderr
    assert_same_weights(weights(out / "last.pt"), weights(uninterrupted / "last.pt"))
    a = torch.load(out / "checkpoint.pt", weights_only=True)["encoder"]["state_dict"]
    b = torch.load(uninterrupted / "checkpoint.pt", weights_only=True)["encoder"]["state_dict"]
    assert_same_weights(a, b)
    log, reference = pd.read_csv(out / "log.csv"), pd.read_csv(uninterrupted / "log.csv")
    assert log["step"].tolist() == list(range(12))  # the killed epoch's rows are not repeated
    assert log["loss"].tolist() == reference["loss"].tolist()


def test_an_unreadable_resume_state_is_set_aside(tmp_path, capfd):
    fit(Toy(), Pairs(), settings(epochs=2), tmp_path)
    data = (tmp_path / "last.pt").read_bytes()
    (tmp_path / "last.pt").write_bytes(data[: len(data) // 2])  # truncated
    summary = fit(Toy(), Pairs(), settings(epochs=2), tmp_path)
    assert summary["resumed_from_epoch"] == 0 and (tmp_path / "last.stale-1.pt").exists()
    assert "cannot be read" in capfd.readouterr().err


# ---------------------------------------------------------------- a new method is one folder
TOY_CONFIG = """\
# A throwaway method: every value is our choice.
backbone: r3d18
clip: {num_frames: 4, stride: 2, crop_size: 32, short_side: 40}
epochs: {k400_mini: 1}
batch_size: 8
optimizer: {name: sgd, lr: 0.1}
variants:
  base: {}
"""

TOY_METHOD = """\
from methods.training.method import PretrainMethod


class Toy(PretrainMethod):
    name = "toy"


METHOD = Toy
"""


def test_a_new_method_folder_gets_the_pretraining_rule_with_no_other_file_touched(tmp_path):
    copy = repository_copy(tmp_path / "repo")
    (copy / "methods" / "toy").mkdir()
    (copy / "methods" / "toy" / "config.yaml").write_text(TOY_CONFIG)
    (copy / "methods" / "toy" / "__init__.py").write_text(TOY_METHOD)
    target = "results/smoke/pretrain/toy/base/k400_mini/checkpoint.pt"
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", target], cwd=copy,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert re.search(r"^pretrain\s+1$", proc.stdout, re.M) and f"Missing output files: {target}" in proc.stdout


def test_the_method_registry_lists_method_folders_only():
    assert "maclr" in method_names() and "training" not in method_names() and "backbones" not in method_names()
    assert method_class("maclr").name == "maclr"
    with pytest.raises(ConfigError, match="unknown method"):
        method_class("nonexistent")


# ---------------------------------------------------------------- shuffled BN across two processes
def _shuffled_forward_worker(rank: int, world: int, port: int, results) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(0)  # the same permutation draw on every rank; rank 0's is broadcast anyway
    x = torch.arange(4.0).view(4, 1) + 10 * rank  # rank 0: 0..3, rank 1: 10..13
    identity = shuffled_forward(lambda clips: dict(clips), {"x": x})["x"]
    centred = shuffled_forward(lambda clips: {"x": clips["x"] - clips["x"].mean()}, {"x": x})["x"]
    results[rank] = (identity, centred)
    dist.destroy_process_group()


def test_shuffled_bn_returns_each_key_to_its_query_but_normalises_over_another_batch():
    """MoCo's shuffling BN on two gloo processes: an identity key encoder gives every process its
    own keys back in order; an encoder that centres over its batch (what BN does) sees a batch mixed
    across processes, so the keys differ from centring the local batch."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_shuffled_forward_worker, args=(2, port, results), nprocs=2, join=True)
    for rank in (0, 1):
        x = torch.arange(4.0).view(4, 1) + 10 * rank
        identity, centred = results[rank]
        assert torch.equal(identity, x)
        assert not torch.allclose(centred, x - x.mean())
    # Every key was centred within one of the two shuffled batches, whose means add up to the global mean.
    both = torch.cat([results[0][1], results[1][1]])
    assert torch.allclose(both.sum(), torch.tensor(0.0))
