"""MCL's own evaluation recipes (config/scales/full.yaml, `method_recipes: mcl:`): the settings a
protocol's command line hands to `evaluate` for an MCL checkpoint at full scale are MCL's, other
methods' and smaller scales' are the shared sections, and the linear protocol's per-video recipe
fits and tests on mean video features."""
import pandas as pd
import pytest
import torch

import protocols.linear as linear
from core.config import load_scale
from protocols.cli import protocol_main, protocol_settings

# What MCL §4.2 and the official code set (the full profile cites each); checked against the
# settings the protocol command receives, so an edit of the profile or of the merge shows here.
MCL_FULL = {
    "linear": {"features": "video_mean", "temporal_views": 20, "spatial_views": 1, "test_short_side": 256,
               "test_crop_size": 224, "solver": "sgd", "lr": 16.0, "epochs": 100, "sgd_batch_size": 128},
    "finetune": {"epochs": 150, "batch_size": 256, "lr": 0.01, "warmup_epochs": 0, "nesterov": True,
                 "grad_clip_norm": 40.0, "dropout": 0.9, "temporal_views": 20, "spatial_views": 3,
                 "test_crop_size": 256, "score_averaging": "logits"},
    "retrieval": {"temporal_views": 10, "spatial_views": 1, "test_short_side": 256, "test_crop_size": 224,
                  "ks": [1, 5, 10, 20, 50]},
}


class Received(Exception):
    """Raised by the stub protocol with the settings it was given."""


def settings_received(tmp_path, protocol: str, method: str, scale: str) -> dict:
    """The settings `protocol_main` hands a protocol's evaluate for a checkpoint of `method`."""
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"encoder": {}, "input": {}, "provenance": {"method": method}}, checkpoint)
    manifest = tmp_path / "m.csv"
    pd.DataFrame({"video_id": ["a"], "label": [0], "split": ["train"]}).to_csv(manifest, index=False)

    def stub(checkpoint, manifest, root, motion_cache, cfg, seed):
        raise Received(cfg)

    with pytest.raises(Received) as got:
        protocol_main(protocol, stub, "", "top1", ["--checkpoint", str(checkpoint), "--manifest", str(manifest),
                                                   "--root", str(tmp_path), "--scale", scale, "--out", str(tmp_path / "o.json")])
    return got.value.args[0]


@pytest.mark.parametrize("protocol", sorted(MCL_FULL))
def test_mcl_checkpoints_get_mcl_recipe_at_full_scale(tmp_path, protocol):
    cfg = settings_received(tmp_path, protocol, "mcl", "full")
    assert {k: cfg[k] for k in MCL_FULL[protocol]} == MCL_FULL[protocol]
    # keys MCL's recipe does not set still come from the shared section
    profile = load_scale("full")
    own = profile["method_recipes"]["mcl"][protocol]
    shared = [k for k in profile[protocol] if k not in own and k != "per_dataset"]  # per_dataset: merged for its datasets only
    assert {k: profile[protocol][k] for k in shared} == {k: cfg[k] for k in shared}


@pytest.mark.parametrize("protocol", sorted(MCL_FULL))
def test_other_methods_and_smaller_scales_keep_the_shared_recipe(tmp_path, protocol):
    def without_per_dataset(section: dict) -> dict:  # merged only for the evaluation sets it names
        return {k: v for k, v in section.items() if k != "per_dataset"}
    assert settings_received(tmp_path, protocol, "maclr", "full") == without_per_dataset(load_scale("full")[protocol])
    for scale in ("smoke", "mini"):
        profile = load_scale(scale)
        if protocol in profile:
            assert protocol_settings(profile, protocol, "mcl") == (without_per_dataset(profile[protocol]), "shared")


def test_linear_video_mean_fits_one_feature_per_video(monkeypatch):
    manifest = pd.DataFrame({"video_id": list("abcdef"), "label": [0, 1, 0, 1, 0, 1],
                             "split": ["train"] * 4 + ["test"] * 2})
    fitted = {}

    def features(checkpoint, train, test, root, motion_cache, cfg, seed):
        x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        train_y, test_y = torch.tensor(train["label"].tolist()), torch.tensor(test["label"].tolist())
        return x[train_y], train_y, x[test_y], test_y

    fit = linear.fit_linear
    monkeypatch.setattr(linear, "video_features", features)
    monkeypatch.setattr(linear, "fit_linear", lambda x, y, n, cfg: (fitted.update(shape=tuple(x.shape)), fit(x, y, n, cfg))[1])
    cfg = {"features": "video_mean", "solver": "lbfgs", "max_iter": 20, "weight_decay": 0.0,
           "temporal_views": 20, "spatial_views": 1}
    checkpoint = {"input": {"modality": "rgb", "motion_kind": None}}
    metrics = linear.evaluate(checkpoint, manifest, None, None, cfg, 0)
    assert fitted["shape"] == (4, 2)  # one mean feature per training video
    assert metrics["top1"] == 100.0 and metrics["views"] == "20x1" and metrics["score_averaging"] == "features"
