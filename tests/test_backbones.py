"""Shape and parameter-count tests of every backbone (tiny inputs; counts need no forward pass)."""
import time

import pytest
import torch
import torchvision

from methods.backbones import BACKBONES, build_backbone


def n_params(module: torch.nn.Module, skip_prefix: str | None = None) -> int:
    return sum(p.numel() for n, p in module.named_parameters() if not (skip_prefix and n.startswith(skip_prefix)))


@pytest.mark.parametrize("name", ["r3d50_slowonly", "r2d50", "r3d18"])
def test_resnet_shapes_and_out_dim(name):
    net = build_backbone(name, width_multiplier=1 / 32)
    y = net(torch.randn(2, 3, 8, 32, 32))
    assert y.shape == (2, net.out_dim)


def test_full_width_out_dims():
    assert build_backbone("r3d50_slowonly").out_dim == 2048
    assert build_backbone("r2d50").out_dim == 2048
    assert build_backbone("r2d50", width_multiplier=1 / 8).out_dim == 256  # MaCLR §3.3 Motion pathway
    assert build_backbone("r3d18").out_dim == 512


def test_in_channels_and_tiny_width_floor():
    net = build_backbone("r2d50", width_multiplier=1 / 1024, in_channels=2)
    assert net(torch.randn(1, 2, 2, 16, 16)).shape == (1, net.out_dim)
    assert net.out_dim == 4  # every width floors at 1 channel; bottleneck expansion 4


def test_smoke_scale_forward_backward_is_fast():
    torch.set_num_threads(1)
    for name in ("r3d50_slowonly", "r2d50"):
        net = build_backbone(name, width_multiplier=1 / 32)
        x = torch.randn(2, 3, 8, 32, 32)
        start = time.perf_counter()
        net(x).sum().backward()
        assert time.perf_counter() - start < 1.0, name


def test_slowonly_matches_pytorchvideo_slow_r50_trunk():
    """Same trunk as pytorchvideo's create_resnet slow-only config with a 5x7x7 conv1 (MaCLR §3.3)."""
    from pytorchvideo.models.resnet import create_resnet

    ref = create_resnet(stem_conv_kernel_size=(5, 7, 7))
    ref_trunk = sum(p.numel() for n, p in ref.named_parameters() if ".proj." not in n)
    assert n_params(build_backbone("r3d50_slowonly")) == ref_trunk


def test_slowonly_temporal_kernels():
    net = build_backbone("r3d50_slowonly")
    assert net.stem[0][0].kernel_size == (5, 7, 7)
    assert [s[0].conv_a[0].kernel_size[0] for s in net.stages] == [1, 1, 3, 3]
    assert all(m.kernel_size[0] == 1 for s in net.stages for b in s for m in b.conv_b.modules()
               if isinstance(m, torch.nn.Conv3d))
    assert all(m.stride[0] == 1 for m in net.modules() if isinstance(m, torch.nn.Conv3d))


def test_r2d50_is_resnet50_trunk():
    ref = torchvision.models.resnet50()
    assert n_params(build_backbone("r2d50")) == n_params(ref, skip_prefix="fc.")
    net = build_backbone("r2d50")
    assert all(m.kernel_size[0] == 1 and m.stride[0] == 1 for m in net.modules() if isinstance(m, torch.nn.Conv3d))


def test_r3d18_matches_torchvision_trunk():
    ref = torchvision.models.video.r3d_18()
    assert n_params(build_backbone("r3d18")) == n_params(ref, skip_prefix="fc.")


def test_unknown_name_is_reported():
    with pytest.raises(KeyError, match="unknown backbone"):
        build_backbone("nope")


def test_every_backbone_cites_its_source():
    assert all(entry.source for entry in BACKBONES.values())
