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


# ---------------------------------------------------------------- every other backbone, tiny inputs
TINY = {"r2d10": (2, 3, 1, 32, 32)}  # the I-Network reads one I-frame


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_backbone_shape(name):
    net = build_backbone(name, width_multiplier=1 / 16)
    shape = TINY.get(name, (2, 3, 8, 32, 32))
    y = net(torch.randn(*shape))
    assert y.shape == (shape[0], net.out_dim)


def test_motion_network_takes_two_channel_motion_vectors():
    net = build_backbone("r3d10", in_channels=2, width_multiplier=1 / 16)  # CMD §4.1 M-Network
    assert net(torch.randn(1, 2, 4, 32, 32)).shape == (1, net.out_dim)


def _trunk_params(model, head):
    return n_params(model, skip_prefix=head)


def test_r2plus1d_builder_matches_torchvision():
    from methods.backbones.resnet import ResNet

    ours = ResNet(18, conv="2plus1d", temporal_kernels=(3, 3, 3, 3), temporal_strides=(1, 2, 2, 2),
                  stem_temporal_kernel=3, stem_pool=False, stem_conv="2plus1d")
    assert n_params(ours) == _trunk_params(torchvision.models.video.r2plus1d_18(), "fc.")


def test_s3d_matches_torchvision_trunk():
    assert n_params(build_backbone("s3d")) == _trunk_params(torchvision.models.video.s3d(), "classifier.")


def _basic_r3d_params(blocks, widths=(64, 128, 256, 512), cin=3):
    """Hand count of a torchvision-style R3D with basic blocks: 3x7x7 stem, 3x3x3 convs, BN (2 per
    channel), 1x1x1 projection shortcut + BN where the shape changes."""
    total = 3 * 7 * 7 * cin * 64 + 2 * 64
    c = 64
    for n, w in zip(blocks, widths):
        for j in range(n):
            total += 27 * c * w + 2 * w + 27 * w * w + 2 * w
            if c != w or (j == 0 and w != 64):
                total += c * w + 2 * w
            c = w
    return total


@pytest.mark.parametrize("name,blocks", [("r3d10", (1, 1, 1, 1)), ("r3d18", (2, 2, 2, 2)),
                                         ("r3d26", (2, 3, 4, 3)), ("r3d34", (3, 4, 6, 3))])
def test_r3d_param_counts_by_hand(name, blocks):
    assert n_params(build_backbone(name)) == _basic_r3d_params(blocks)


def test_r3d10_two_channel_param_count_by_hand():
    assert n_params(build_backbone("r3d10", in_channels=2)) == _basic_r3d_params((1, 1, 1, 1), cin=2)


@pytest.mark.parametrize("name,paper_mparams", [
    ("r3d10", 14.4),        # MCL Table 3, IIC R3D-10
    ("r2plus1d50", 27.3),   # MCL Table 3, MCL/SeCo R(2+1)D
    ("s3d", 7.9),           # MCL Table 3, CoCLR/MCL S3D
    ("r3d50_cvrl", 31.7),   # MCL Table 3, CVRL R3D-50
    ("r2d50", 23.5),        # MCL Table 3, R-50
])
def test_param_counts_match_paper(name, paper_mparams):
    assert n_params(build_backbone(name)) / 1e6 == pytest.approx(paper_mparams, abs=0.05)


@pytest.mark.xfail(strict=True, reason="MCL Table 3 lists PRP's R(2+1)D at 14.4M; the R(2+1)D-10 built with "
                   "torchvision's M_i convention counts 12.49M (-13%)")
def test_r2plus1d10_param_count_vs_prp():
    assert n_params(build_backbone("r2plus1d10")) / 1e6 == pytest.approx(14.4, abs=0.05)


def test_c3d_param_count_by_hand():
    widths = [64, 128, 256, 256, 512, 512, 512, 512]
    cins = [3] + widths[:-1]
    assert n_params(build_backbone("c3d")) == sum(27 * a * b + 2 * b for a, b in zip(cins, widths))


def test_hcml_backbones_follow_table8():
    """HCML suppl. Table 8: output T, T/2, T/4, T/4 after res2..res5; 3x1x1 convs only in res4/res5."""
    for name in ("r2d50_hcml", "r2plus1d101_hcml"):
        net = build_backbone(name, width_multiplier=1 / 16)
        x = net.stem(torch.randn(1, 3, 16, 64, 64))
        ts = []
        for stage in net.stages:
            x = stage(x)
            ts.append(x.shape[2])
        assert ts == [16, 8, 4, 4]
    net = build_backbone("r2plus1d101_hcml")
    kts = [{m.kernel_size[0] for m in s.modules() if isinstance(m, torch.nn.Conv3d)} for s in net.stages]
    assert kts == [{1}, {1}, {1, 3}, {1, 3}]
    assert len(net.stages[2]) == 23


def test_cost_volume_channels_and_identity_peak():
    from methods.backbones.hcml import cost_volume, cost_volume_channels

    assert cost_volume_channels(6, 2) == 49  # M = (2*floor(6/2)+1)^2, HCML §3.2
    a = torch.randn(2, 8, 12, 12)
    cv = cost_volume(a, a, 6, 2)
    assert cv.shape == (2, 49, 12, 12)
    assert torch.allclose(cv[:, 24], torch.ones(2, 12, 12), atol=1e-5)  # zero displacement: cos = 1


def test_cost_volume_finds_a_shift():
    from methods.backbones.hcml import cost_volume

    a = torch.randn(1, 16, 20, 20)
    b = torch.roll(a, shifts=(2, -4), dims=(2, 3))  # content moves down 2, left 4
    cv = cost_volume(a, b, 6, 2)
    offsets = list(range(-6, 7, 2))
    best = cv[0, :, 8, 8].argmax().item()
    assert (offsets[best // 7], offsets[best % 7]) == (2, -4)


def test_prime_motion_block_params_by_hand():
    from methods.backbones.hcml import PrimeMotionBlock

    c, beta, k = 64, 4, 3
    r = c // beta
    pmb = PrimeMotionBlock(c, beta=beta, fusion_kernel=k)
    expected = c * r + 2 * r + 2 * 49 + (r + 49) * r * k * k + 2 * r
    assert n_params(pmb) == expected


def test_hcml_net_returns_motion_at_levels():
    from methods.backbones.registry import hcml_net

    net = hcml_net("r2d50_hcml", width_multiplier=1 / 16, beta=2)
    feats, motion = net.forward_with_motion(torch.randn(1, 3, 8, 64, 64))
    assert feats.shape == (1, net.out_dim) and sorted(motion) == [1, 2, 3]


def test_flow_estimator_shape_and_dense_widths():
    from methods.backbones.hcml import FlowEstimator

    fe = FlowEstimator(10, width_multiplier=1 / 16)
    assert fe(torch.randn(1, 10, 3, 16, 16)).shape == (1, 2, 3, 16, 16)
    assert len(fe.layers) == 5
    assert fe.layers[-1][0].in_channels == 10 + sum(max(1, round(w / 16)) for w in (128, 128, 96, 64))


def test_cmd_transformer_param_count_by_hand():
    from methods.backbones.others import MotionPredictor

    d, ff = 512, 2048
    attn = 4 * d * d + 4 * d
    ffn = 2 * d * ff + ff + d
    enc, dec = attn + ffn + 2 * 2 * d, 2 * attn + ffn + 3 * 2 * d
    core = 2 * enc + 4 * dec + 2 * 2 * d  # plus the final encoder/decoder LayerNorms
    mp = MotionPredictor(in_dim=512, out_dim=512, in_positions=8, out_shape=(2, 2, 2))
    assert n_params(mp.transformer) == core
    y = mp(torch.randn(2, 512, 2, 2, 2))
    assert y.shape == (2, 512, 2, 2, 2)
