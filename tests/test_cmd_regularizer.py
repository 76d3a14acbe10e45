"""CMD Table 6: motion prediction as a regulariser of supervised training from scratch (§4.2): the
objective by hand, the fine-tuning protocol training the CMD variant's own task on a real MPEG-4
fixture (every part of the motion branch learns, the test reads only the classifier), the missing
cache named, and the DAG's inputs."""
import pytest
import torch

from core.config import load_scale, method_config
from core.errors import ConfigError
from methods.cmd import METHOD
from methods.cmd.regularizer import regularised_objective
from methods.training.random_start import write_random_start
from protocols.finetune import evaluate, own_task
from tests.test_cmd_tables57 import squares  # noqa: F401  (the four-video MPEG-4 fixture)


def test_the_objective_weights_eq2_by_0_2():
    cfg = method_config("cmd", "full", "mp_regularizer_c3d")
    assert cfg["regularizer_weight"] == 0.2 and cfg["tasks"] == ["motion"]  # §4.2
    assert float(regularised_objective(torch.tensor(1.5), torch.tensor(4.0), 0.2)) == pytest.approx(2.3)
    assert METHOD.finetune_inputs(cfg) == ["compressed"]
    assert METHOD.finetune_inputs(method_config("cmd", "full", "full_c3d")) == []


def settings(**extra):
    return {**load_scale("smoke")["finetune"], "epochs": 2, "batch_size": 2, "temporal_views": 2, "spatial_views": 1, **extra}


def test_fine_tuning_trains_the_classifier_with_the_motion_branch(squares, tmp_path):  # noqa: F811
    folder, cache, manifest = squares
    checkpoint = torch.load(write_random_start("cmd", "mp_regularizer_c3d", "smoke", tmp_path), weights_only=True)
    assert checkpoint["provenance"]["recipe_method"] == "cmd" and checkpoint["provenance"]["pretrain"] == "none"
    train = manifest[manifest["split"] == "train"]
    task, data = own_task(checkpoint, train, folder, cache, settings(), 2, 0)
    sample = data[0]
    assert set(sample) >= {"clip", "motion", "negatives", "label"} and int(sample["label"]) == 0
    batch = {k: torch.stack([data[0][k], data[1][k]]) for k in sample}
    terms = task(batch)
    assert set(terms) == {"cross_entropy", "motion"}
    total = task.total_loss(terms)
    assert total.item() == pytest.approx((terms["cross_entropy"] + 0.2 * terms["motion"]).item())
    total.backward()
    for name in ("cmd.v_net", "cmd.m_net", "cmd.predictor", "cmd.g_m1", "cmd.g_m2", "head"):
        grads = [p.grad for n, p in task.named_parameters() if n.startswith(name)]
        assert grads and any(g is not None and g.abs().sum() > 0 for g in grads), name
    # The V-Network starts from the checkpoint's seeded weights.
    v = checkpoint["encoder"]["state_dict"]
    fresh, _ = own_task(checkpoint, train, folder, cache, settings(), 2, 0)
    assert all(torch.equal(fresh.cmd.v_net.state_dict()[k], v[k]) for k in v)

    torch.set_num_threads(1)
    metrics = evaluate(checkpoint, manifest, folder, cache, settings(), 0)
    assert 0 <= metrics["top1"] <= 100 and metrics["num_test_videos"] == 2


def test_a_regularised_run_without_its_cache_is_named(squares, tmp_path):  # noqa: F811
    folder, _, manifest = squares
    checkpoint = torch.load(write_random_start("cmd", "mp_regularizer_r3d26", "smoke", tmp_path), weights_only=True)
    with pytest.raises(ConfigError, match="mp_regularizer_r3d26.*--motion-cache"):
        own_task(checkpoint, manifest[manifest["split"] == "train"], folder, None, settings(), 2, 0)
    # A plain CMD checkpoint has no task of its own: the protocol's classifier fine-tunes it.
    plain = torch.load(write_random_start("cmd", "full_c3d", "smoke", tmp_path / "plain"), weights_only=True)
    assert own_task(plain, manifest, folder, None, settings(), 2, 0) is None
