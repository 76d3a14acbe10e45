"""MCL's pretraining step under DDP on two gloo CPU processes with MoCo's shuffled BN (MCL §4.2):
L_MAL's double backward (gradient maps with create_graph inside `forward`) runs under DDP, every
key returns to its own query after the shuffle, both processes end the step with the same
parameters, and the queue receives the keys of both processes."""
import copy
import socket

import torch
import torch.multiprocessing as mp

from core.config import method_config
from methods.mcl import METHOD
from methods.training.engine import RunSettings, train_step
from methods.training.optim import build_optimizer

PER_PROCESS = 2  # clips per process
SHUFFLE_SEED = 123


def tiny_config() -> dict:
    cfg = method_config("mcl", "smoke", "ta_sa_mal")
    cfg["batch_norm"] = "shuffle"
    cfg["batch_size"] = 2 * PER_PROCESS
    # The smoke clip (8 x 48 x 48): R(2+1)D-50's last block is then 2 x 2 x 2, so the normalised
    # maps of L_MAL vary over positions and have a gradient (a 1 x 1 x 1 map would have none).
    return cfg


def rank_batch(cfg: dict, rank: int) -> dict:
    """Each process its own clips (drawn from a generator seeded by the rank) and video indices."""
    g = torch.Generator().manual_seed(100 + rank)
    frames, size = cfg["clip"]["num_frames"], cfg["clip"]["crop_size"]
    return {"q": torch.randn(PER_PROCESS, 3, frames, size, size, generator=g),
            "k": torch.randn(PER_PROCESS, 3, frames, size, size, generator=g),
            "motion": torch.rand(PER_PROCESS, frames, 2, 2, generator=g),
            "video_index": torch.arange(PER_PROCESS) + 10 * rank}


def _mcl_step_worker(rank: int, world: int, port: int, results) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        cfg = tiny_config()
        torch.manual_seed(0)
        task = METHOD(cfg)
        task.train()
        runner = torch.nn.parallel.DistributedDataParallel(task)
        settings = RunSettings.from_config(cfg, 1)
        params = [p for p in task.parameters() if p.requires_grad]
        optimizers = {"main": build_optimizer(params, settings.optimizer_config("main"))}
        momentum_before = copy.deepcopy(task.momentum)  # the key encoder as the step's forward sees it
        batch = rank_batch(cfg, rank)
        # The shuffle's permutation is the first draw of the step (rank 0's is broadcast): seeding
        # here lets the test redraw it.
        torch.manual_seed(SHUFFLE_SEED)
        loss, terms = train_step(runner, task, batch, optimizers, params, settings, torch.device("cpu"), "test step")
        # The keys each process would get without DDP: the whole batch of both processes, cut by
        # the same permutation into the two shuffled sub-batches, each through the key encoder.
        both_k = [torch.empty_like(batch["k"]) for _ in range(world)]
        dist.all_gather(both_k, batch["k"])
        both_k = torch.cat(both_k)
        torch.manual_seed(SHUFFLE_SEED)
        permutation = torch.randperm(world * PER_PROCESS)
        expected = torch.empty(world * PER_PROCESS, cfg["embedding_dim"])
        with torch.no_grad():
            for part in permutation.view(world, PER_PROCESS):
                expected[part] = momentum_before({"k": both_k[part]})["k"]
        results[rank] = {
            "loss": loss, "terms": sorted(terms),
            "keys": task._keys.clone(), "expected_keys": expected[rank * PER_PROCESS:(rank + 1) * PER_PROCESS],
            "unshuffled_keys": momentum_before({"k": batch["k"]})["k"].detach(),
            "params": {n: p.detach().clone() for n, p in task.online.named_parameters()},
            "grad_stem": next(task.online.backbone.parameters()).grad.clone(),
            "queue": task.queue.embeddings[:world * PER_PROCESS].clone(),
            "queue_index": task.queue.video_index.clone(),
        }
    finally:
        dist.destroy_process_group()


def test_mcl_step_with_shuffled_bn_and_l_mal_under_two_gloo_processes():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    results = mp.Manager().dict()
    mp.spawn(_mcl_step_worker, args=(2, port, results), nprocs=2, join=True)
    r0, r1 = results[0], results[1]
    for r in (r0, r1):
        # The step ran with every L_MAL term (the double backward) under DDP and moved the stem.
        assert r["terms"] == ["mal_s", "mal_st", "mal_t", "nce"]
        assert torch.isfinite(torch.tensor(r["loss"]))
        assert r["grad_stem"].abs().sum() > 0
        # Each key came back to its own query: the key of the same clip in its shuffled sub-batch.
        assert torch.allclose(r["keys"], r["expected_keys"], atol=1e-6)
    # The shuffle changed the batch-norm statistics of at least one process's keys.
    assert any(not torch.allclose(r["keys"], r["unshuffled_keys"], atol=1e-4) for r in (r0, r1))
    # DDP: both processes end the step with the same online parameters (gradients were averaged).
    assert r0["params"].keys() == r1["params"].keys()
    for name in r0["params"]:
        assert torch.equal(r0["params"][name], r1["params"][name]), name
    # The queue holds the keys of both processes, rank 0's first, on both processes.
    both = torch.cat([r0["keys"], r1["keys"]])
    for r in (r0, r1):
        assert torch.allclose(r["queue"], both)
        assert r["queue_index"][:2 * PER_PROCESS].tolist() == [0, 1, 10, 11]
        assert (r["queue_index"][2 * PER_PROCESS:] == -1).all()
