"""HCML suppl. Table 8 (tables/specs/hcml_table8.yaml) against the built backbones, layer by layer: the
stem's kernel, width and stride, each res stage's bottleneck width, output channels, spatial kernel,
temporal conv (R(2+1)D-101's res4 and res5 only) and block count, and every layer's output size for a
16 x 224 x 224 input (on the meta device: shapes without arithmetic)."""
import pytest
import torch
from torch import nn

from methods.backbones import build_backbone
from tables.schema import load_spec

SPEC = load_spec("tables/specs/hcml_table8.yaml")
PART = SPEC.part("")
BACKBONES = {"R2D-50": "r2d50_hcml", "R(2+1)D-101": "r2plus1d101_hcml"}
FRAMES = 16


def value(row: str, column: str):
    return PART.row(row).cells[column].value


def kernels(module: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(m.kernel_size) for m in module.modules() if isinstance(m, nn.Conv3d)]


@pytest.fixture(scope="module", params=list(BACKBONES))
def built(request):
    """(name, network, {layer: output shape}) of one backbone at full width for a 16 x 224^2 clip."""
    with torch.device("meta"):
        net = build_backbone(BACKBONES[request.param])
        shapes = {}
        x = torch.empty(1, 3, FRAMES, 224, 224)
        shapes["conv1"] = net.stem[0](x).shape
        x = net.stem(x)
        for i, stage in enumerate(net.stages):
            x = stage(x)
            shapes[f"res{i + 2}"] = x.shape
    return request.param, net, shapes


def test_conv1(built):
    _, net, shapes = built
    conv = net.stem[0][0]
    assert conv.kernel_size == (1, value("conv1", "kernel"), value("conv1", "kernel"))
    assert conv.out_channels == value("conv1", "out channels") == value("conv1", "width")
    assert conv.stride == (1, 2, 2)  # printed "stride: 1x2x2"
    assert tuple(shapes["conv1"][2:]) == (FRAMES, 112, 112) and value("conv1", "output size") == 112


@pytest.mark.parametrize("layer", ["res2", "res3", "res4", "res5"])
def test_res_stages(built, layer):
    name, net, shapes = built
    stage = net.stages[int(layer[-1]) - 2]
    assert len(stage) == value(layer, f"{name} blocks")
    temporal = value(layer, "R(2+1)D-101 temporal kernel") if name == "R(2+1)D-101" else None
    for block in stage:
        assert block.conv_a[0].kernel_size == (1, 1, 1) and block.conv_a[0].out_channels == value(layer, "width")
        assert block.conv_c[0].kernel_size == (1, 1, 1) and block.conv_c[0].out_channels == value(layer, "out channels")
        middle = kernels(block.conv_b)
        k = value(layer, "kernel")
        # "(3x1x1, 256)" then "1x3x3, 256": the temporal conv keeps the block's width
        assert middle == ([(temporal, 1, 1), (1, k, k)] if temporal else [(1, k, k)])
        assert all(m.out_channels == value(layer, "width") for m in block.conv_b.modules() if isinstance(m, nn.Conv3d))
    out = shapes[layer]
    assert out[1] == value(layer, "out channels")
    assert tuple(out[2:]) == (FRAMES // value(layer, "output T divisor"), value(layer, "output size"), value(layer, "output size"))
