"""tables.compute's shortcuts give fvcore's counts exactly: counting a network at a reduced input and
scaling, counting HCMLNet as trunk + prime motion blocks, and counting each network once.

Each network kind that tables/compute_claims.yaml counts (claims, PMB sweep, calibration) is counted
both ways at an input where the reduction applies; every field (GFLOPs, params, GFLOPs by operator,
ops without a handle) must be equal, not close.
"""
import copy

import pytest
import torch
import torchvision
from torch import nn

from methods.backbones import build_backbone
from tables import compute

SPEC = compute.load_claims()


def _claim_backbones() -> set[str]:
    names = {c["network"]["backbone"] for c in SPEC["claims"]}
    names |= {c["baseline"]["backbone"] for c in SPEC["claims"] if "baseline" in c}
    for t in SPEC["hcml_pmb_sweep"]["targets"]:
        names |= {t["backbone"], t["baseline"]}
    return names


# Inputs that keep each net's layout (temporal strides, stem) but are small enough to count directly.
SMALL = {"r2plus1d10": (3, 16, 32, 32), "r3d10": (3, 16, 32, 32), "r3d18": (3, 16, 32, 32),
         "s3d": (3, 16, 64, 64), "r2plus1d50": (3, 16, 64, 64), "r2d50": (3, 1, 64, 64),
         "r3d50_cvrl": (3, 16, 64, 64), "r2d50_hcml": (3, 16, 64, 64), "r2plus1d101_hcml": (3, 8, 64, 64),
         "r2d50_hcml_pmb": (3, 8, 64, 64), "r2plus1d101_hcml_pmb": (3, 8, 64, 64)}


def test_every_counted_backbone_has_a_check():
    assert _claim_backbones() <= set(SMALL)


def _both(net, shape):
    return compute.count_fast(copy.deepcopy(net), shape), compute.count(net, shape)


def _recording_raw(monkeypatch) -> list:
    """The input shapes fvcore is run on from now on."""
    shapes, real = [], compute._count_raw
    monkeypatch.setattr(compute, "_count_raw", lambda net, shape, inputs=None: shapes.append(
        tuple(shape) if shape is not None else None) or real(net, shape, inputs))
    return shapes


@pytest.mark.parametrize("name", sorted(SMALL))
def test_fast_count_equals_direct(name, monkeypatch):
    torch.manual_seed(0)
    net = build_backbone(name)
    direct = compute.count(copy.deepcopy(net), SMALL[name])
    shapes = _recording_raw(monkeypatch)
    fast = compute.count_fast(net, SMALL[name])
    assert fast == direct
    assert SMALL[name] not in shapes  # the shortcut was taken, not the fallback
    if name.endswith("_pmb"):
        return
    # the reduction is taken: the count is not simply the direct one
    red = compute._reduction(net.eval(), SMALL[name])
    assert red is not None and max(red[1]) > 1


@pytest.mark.parametrize("kwargs", [{"levels": [0, 1, 2, 3], "beta": 8, "fusion_kernel": 1},
                                    {"levels": [1, 2, 3], "beta": 2, "fusion_kernel": 3},
                                    {"levels": [0, 1, 2, 3], "beta": 16, "fusion_kernel": 3}])
def test_hcml_sweep_configs_equal_direct(kwargs):
    torch.manual_seed(0)
    net = build_backbone("r2d50_hcml_pmb", **kwargs)
    fast, direct = _both(net, (3, 8, 64, 64))
    assert fast == direct


@pytest.mark.parametrize("model,shape", [("r3d_18", (3, 16, 32, 32)), ("r2plus1d_18", (3, 16, 32, 32)),
                                         ("mc3_18", (3, 16, 32, 32)), ("resnet50", (3, 64, 64))])
def test_calibration_models_equal_direct(model, shape):
    """torchvision's video ResNets and ResNet-50 end in a linear classifier: counted unscaled."""
    ctor = getattr(torchvision.models.video if len(shape) == 4 else torchvision.models, model)
    torch.manual_seed(0)
    net = ctor()
    fast, direct = _both(net, shape)
    assert fast == direct
    assert "linear" in direct["by_operator"]
    red = compute._reduction(net.eval(), shape)
    assert red is not None and max(red[1]) > 1


def test_fixed_size_pooling_is_not_scaled():
    """torchvision's S3D averages over a fixed (2, 7, 7) window, then a 1x1 conv classifies: no reduction
    keeps every conv's output in proportion, so it is counted at full size."""
    net = torchvision.models.video.s3d()
    assert compute._reduction(net.eval(), (3, 16, 224, 224)) is None


class _PooledConv(nn.Module):
    """A conv after pooling to a fixed size: its count does not grow with the input."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.b = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x):
        return self.b(self.pool(self.a(x)))


class _CostVolume(nn.Module):
    def forward(self, x):
        from methods.backbones.hcml import cost_volume
        return cost_volume(x, x, 6, 2)


@pytest.mark.parametrize("net,shape", [(_PooledConv(), (3, 64, 64)), (_CostVolume(), (64, 32, 32))])
def test_not_proportional_is_counted_at_full_size(net, shape):
    """fvcore rounds an einsum's count to 4 significant digits, so a cost volume is never scaled."""
    fast, direct = _both(net, shape)
    assert fast == direct


def test_each_network_is_counted_once(monkeypatch):
    """Defaults given explicitly (the sweep) and left out (the claims) share one count; other kwargs do not."""
    calls = []
    real = compute.count_fast
    monkeypatch.setattr(compute, "count_fast", lambda net, shape: calls.append(shape) or real(net, shape))
    monkeypatch.setattr(compute, "_COUNTS", {})
    shape = [3, 4, 32, 32]
    a = compute.count_network({"backbone": "r2d50_hcml_pmb"}, shape)
    b = compute.count_network({"backbone": "r2d50_hcml_pmb",
                               "kwargs": {"beta": 4, "fusion_kernel": 3, "levels": [1, 2, 3]}}, shape)
    assert a is b and len(calls) == 1
    c = compute.count_network({"backbone": "r2d50_hcml_pmb", "kwargs": {"beta": 8}}, shape)
    assert c is not a and len(calls) == 2
    assert c["gflops"] < a["gflops"]


def test_canonical_keys_keep_types_apart():
    assert compute._canonical("r3d18", (("stem_pool", True),)) != compute._canonical("r3d18", (("stem_pool", 1),))
    assert compute._canonical("r3d18", ()) == compute._canonical("r3d18", (("depth", 18),))


@pytest.mark.parametrize("shape", [(16, 4, 24, 24), (5, 3, 17, 9)])
def test_cost_volume_einsums_counted_one_by_one_equal_direct(shape, monkeypatch):
    """The cost volume's 49 einsums, each counted once on its own at full size (counts rounded by
    fvcore as in the network), give the direct count."""
    from methods.backbones.hcml import PrimeMotionBlock

    part = compute._CostVolume(PrimeMotionBlock(4 * shape[0], beta=4))
    direct = compute._count_raw(part, shape)
    shapes = _recording_raw(monkeypatch)
    fast = compute._count_einsums(part, shape)
    assert shape not in shapes  # not the fallback
    for key in ("flops", "by_operator", "skipped"):
        assert fast[key] == direct[key]
