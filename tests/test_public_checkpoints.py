"""Public checkpoints into the suite's backbones (methods/backbones/public.py): key mappings checked on
randomly initialised public architectures built without weights (torchvision r3d_18 and ResNet-50,
pytorchvideo slow_r50), I3D inflation checked on a clip of identical frames, and the errors."""
import pytest
import torch
import torchvision
from pytorchvideo.models.hub import slow_r50

from core.errors import CheckpointError, MissingInputError
from methods.backbones import build_backbone
from methods.backbones.public import (PUBLIC_CHECKPOINTS, inflate_kernel, load_public_checkpoint, map_state_dict,
                                      suite_key)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)
    torch.manual_seed(0)


def randomise_batch_norm(net: torch.nn.Module) -> torch.nn.Module:
    """Non-trivial BN statistics and affine parameters, so a BN mapped to the wrong place shows."""
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.1)
    return net.eval()


def assert_round_trip(public: dict, suite: torch.nn.Module, layout: str, inflated=()):
    """Every public backbone tensor sits at its mapped suite key unchanged (a 2D kernel as the one tap of
    a 3D one; the `inflated` ones over several taps, which sum to the public kernel)."""
    suite_state = suite.state_dict()
    for key, value in public.items():
        if key.startswith(("fc.", "blocks.5.")):
            continue
        mapped = suite_key(key, layout, suite)
        got = suite_state[mapped]
        assert (key in inflated) == (got.dim() == 5 and got.shape[2] > 1 and value.shape[2:3] != got.shape[2:3]), key
        if got.shape != value.shape:
            got = got.sum(2, keepdim=value.dim() == 5)
        assert torch.allclose(got, value.to(got.dtype), atol=1e-6), key


def test_inflation_repeats_and_divides():
    w = torch.randn(4, 3, 7, 7)
    out = inflate_kernel(w, 5)
    assert out.shape == (4, 3, 5, 7, 7) and torch.allclose(out[:, :, 2] * 5, w) and torch.allclose(out.sum(2), w)
    assert torch.equal(inflate_kernel(w.unsqueeze(2), 3), inflate_kernel(w, 3))
    with pytest.raises(ValueError, match="one-tap"):
        inflate_kernel(torch.randn(4, 3, 3, 7, 7), 5)


def test_torchvision_r3d_18_maps_onto_r3d18_exactly():
    public = randomise_batch_norm(torchvision.models.video.r3d_18(weights=None))
    suite = build_backbone("r3d18").eval()
    suite.load_state_dict(map_state_dict(suite, public.state_dict(), "torchvision_video_resnet", "r3d_18"))
    assert_round_trip(public.state_dict(), suite, "torchvision_video_resnet")
    public.fc = torch.nn.Identity()
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        assert torch.allclose(suite(clip), public(clip), atol=1e-5)


def test_pytorchvideo_slow_r50_maps_onto_the_slow_only_r3d50():
    public = randomise_batch_norm(slow_r50(pretrained=False))
    state = public.state_dict()
    # With slow_r50's own 1x7x7 stem the suite network computes exactly what pytorchvideo's trunk does.
    same_stem = build_backbone("r3d50_slowonly", stem_temporal_kernel=1).eval()
    same_stem.load_state_dict(map_state_dict(same_stem, state, "pytorchvideo_resnet", "slow_r50"))
    assert_round_trip(state, same_stem, "pytorchvideo_resnet")
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        trunk = torch.nn.Sequential(*public.blocks[:5])(clip).mean((2, 3, 4))
        assert torch.allclose(same_stem(clip), trunk, atol=1e-4)
    # MaCLR's 5x7x7 conv1 (§3.3): slow_r50's 1x7x7 kernel is inflated, the rest copied.
    paper = build_backbone("r3d50_slowonly").eval()
    paper.load_state_dict(map_state_dict(paper, state, "pytorchvideo_resnet", "slow_r50"))
    assert paper.state_dict()["stem.0.0.weight"].shape[2] == 5
    assert_round_trip(state, paper, "pytorchvideo_resnet", inflated={"blocks.0.conv.weight"})


def test_inflated_imagenet_resnet50_agrees_with_the_2d_network_on_identical_frames():
    """torchvision's 2D ResNet-50 and its I3D-inflated slow-only R3D-50 copy on a clip of one frame
    repeated: the 3D feature map equals the 2D one at every time step the temporal zero padding does
    not reach (conv1 reaches 2 steps, each res4/res5 block 1: 2 + 6 + 3 = 11 from either end)."""
    net2d = randomise_batch_norm(torchvision.models.resnet50(weights=None))
    net3d = build_backbone("r3d50_slowonly").eval()
    net3d.load_state_dict(map_state_dict(net3d, net2d.state_dict(), "torchvision_resnet", "resnet50"))
    assert_round_trip(net2d.state_dict(), net3d, "torchvision_resnet",
                      inflated={"conv1.weight"} | {k for k in net2d.state_dict()
                                                   if k.startswith(("layer3.", "layer4.")) and k.endswith("conv1.weight")})
    frame = torch.randn(1, 3, 32, 32)
    clip = frame.unsqueeze(2).repeat(1, 1, 23, 1, 1)
    with torch.no_grad():
        trunk2d = torch.nn.Sequential(*list(net2d.children())[:-2])(frame)
        maps3d = net3d.forward_features(clip)
    assert torch.allclose(maps3d[:, :, 11], trunk2d, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(maps3d[:, :, 0], trunk2d, atol=1e-4, rtol=1e-4)  # the padded edge differs


def test_suite_2d_network_inflates_into_its_3d_counterpart():
    net2d = randomise_batch_norm(build_backbone("r2d50", width_multiplier=1 / 16))
    net3d = build_backbone("r3d50_slowonly", width_multiplier=1 / 16).eval()
    net3d.load_state_dict(map_state_dict(net3d, net2d.state_dict(), "suite", "r2d50"))
    clip = torch.randn(1, 3, 1, 32, 32).repeat(1, 1, 23, 1, 1)
    with torch.no_grad():
        assert torch.allclose(net3d.forward_features(clip)[:, :, 11], net2d.forward_features(clip)[:, :, 11], atol=1e-5)


def test_public_checkpoint_registry_names_backbones_and_differences(tmp_path):
    for name, entry in PUBLIC_CHECKPOINTS.items():
        build_backbone(entry.backbone, width_multiplier=1 / 32)
        assert entry.differs, name
    path = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": slow_r50(pretrained=False).state_dict()}, path)  # pytorchvideo's file layout
    net = build_backbone("r3d50_slowonly")
    assert load_public_checkpoint(net, path, "pytorchvideo_slow_r50_k400").backbone == "r3d50_slowonly"


def test_absent_checkpoint_names_the_file(tmp_path):
    absent = tmp_path / "r3d_18-b3b3357e.pth"
    with pytest.raises(MissingInputError, match=rf"{absent}: no such checkpoint file.*torchvision_r3d_18_k400"):
        load_public_checkpoint(build_backbone("r3d18"), absent, "torchvision_r3d_18_k400")


def test_wrong_checkpoint_is_refused_by_name(tmp_path):
    path = tmp_path / "r3d_18.pth"
    torch.save(torchvision.models.video.r3d_18(weights=None).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"r3d_18\.pth: does not match the backbone: .*no place for"):
        load_public_checkpoint(build_backbone("r3d50_slowonly"), path, "pytorchvideo_slow_r50_k400")
    with pytest.raises(CheckpointError, match=r"shape mismatch.*stem\.0\.weight \(64, 3, 3, 7, 7\) -> stem\.0\.0\.weight \(32, 3, 3, 7, 7\)"):
        load_public_checkpoint(build_backbone("r3d18", width_multiplier=0.5), path, "torchvision_r3d_18_k400")
