"""Public checkpoints loaded into the suite's backbones: key mappings and 2D -> 3D inflation.

Three public layouts map onto :class:`methods.backbones.resnet.ResNet` (``stem.0.{0,1}``,
``stages.<s>.<b>.{conv_a,conv_b,conv_c,shortcut}``):

- ``torchvision_resnet``: torchvision's 2D ResNet (``conv1``, ``bn1``, ``layer<i>.<j>.conv<k>`` /
  ``bn<k>`` / ``downsample``), e.g. ImageNet ResNet-50 (``ResNet50_Weights.IMAGENET1K_V1``);
- ``torchvision_video_resnet``: torchvision's VideoResNet with 3D convs (``r3d_18`` / ``mc3_18``:
  ``stem.{0,1}``, ``layer<i>.<j>.conv<k>.{0,1}``, ``downsample.{0,1}``);
- ``pytorchvideo_resnet``: pytorchvideo's ``create_resnet`` (``slow_r50``: ``blocks.0.{conv,norm}``,
  ``blocks.<i>.res_blocks.<j>.branch1_{conv,norm}`` / ``branch2.{conv,norm}_{a,b,c}``);
- ``suite``: the suite's own names, e.g. a 2D ``r2d50`` inflated into ``r3d50_slowonly``.

The classifier (``fc``, ``blocks.5``) is dropped. A kernel with fewer temporal taps than the suite's
(a 2D kernel, or pytorchvideo's 1x7x7 stem going into MaCLR's 5x7x7 one) is inflated as I3D does
(:func:`inflate_kernel`). Every other shape must match, and every backbone weight must come from the
file: anything else is refused by name (a CheckpointError naming the file and the keys).

:data:`PUBLIC_CHECKPOINTS` names the public checkpoints a config may point at, the suite backbone
each one fills, and where the public architecture differs from the paper's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from core.errors import CheckpointError, ConfigError, MissingInputError
from core.io import torch_load

# (pattern, suite name): `{s}` / `{b}` are the stage (0-based) and block of groups 1 and 2, `{p}` the
# parameter in the last group; `<conv>.BN` is the BatchNorm closing that conv (resolved on the backbone).
_BLOCK = r"^{stage}\.(\d+)\."
LAYOUTS: dict[str, tuple[tuple[str, str], ...]] = {
    "torchvision_resnet": (
        (r"^conv1\.weight$", "stem.0.0.weight"),
        (r"^bn1\.(.+)$", "stem.0.1.{p}"),
        (r"^layer(\d)\.(\d+)\.conv1\.weight$", "conv_a.0.weight"),
        (r"^layer(\d)\.(\d+)\.bn1\.(.+)$", "conv_a.BN.{p}"),
        (r"^layer(\d)\.(\d+)\.conv2\.weight$", "conv_b.0.weight"),
        (r"^layer(\d)\.(\d+)\.bn2\.(.+)$", "conv_b.BN.{p}"),
        (r"^layer(\d)\.(\d+)\.conv3\.weight$", "conv_c.0.weight"),
        (r"^layer(\d)\.(\d+)\.bn3\.(.+)$", "conv_c.1.{p}"),
        (r"^layer(\d)\.(\d+)\.downsample\.0\.weight$", "shortcut.0.weight"),
        (r"^layer(\d)\.(\d+)\.downsample\.1\.(.+)$", "shortcut.1.{p}"),
    ),
    "torchvision_video_resnet": (
        (r"^stem\.0\.weight$", "stem.0.0.weight"),
        (r"^stem\.1\.(.+)$", "stem.0.1.{p}"),
        (r"^layer(\d)\.(\d+)\.conv1\.0\.weight$", "conv_a.0.weight"),
        (r"^layer(\d)\.(\d+)\.conv1\.1\.(.+)$", "conv_a.BN.{p}"),
        (r"^layer(\d)\.(\d+)\.conv2\.0\.weight$", "conv_b.0.weight"),
        (r"^layer(\d)\.(\d+)\.conv2\.1\.(.+)$", "conv_b.BN.{p}"),
        (r"^layer(\d)\.(\d+)\.downsample\.0\.weight$", "shortcut.0.weight"),
        (r"^layer(\d)\.(\d+)\.downsample\.1\.(.+)$", "shortcut.1.{p}"),
    ),
    "pytorchvideo_resnet": (
        (r"^blocks\.0\.conv\.weight$", "stem.0.0.weight"),
        (r"^blocks\.0\.norm\.(.+)$", "stem.0.1.{p}"),
        (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch1_conv\.weight$", "shortcut.0.weight"),
        (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch1_norm\.(.+)$", "shortcut.1.{p}"),
        (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.conv_a\.weight$", "conv_a.0.weight"),
        (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_a\.(.+)$", "conv_a.BN.{p}"),
        (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.conv_b\.weight$", "conv_b.0.weight"),
        (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_b\.(.+)$", "conv_b.BN.{p}"),
        (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.conv_c\.weight$", "conv_c.0.weight"),
        (r"^blocks\.([1-4])\.res_blocks\.(\d+)\.branch2\.norm_c\.(.+)$", "conv_c.1.{p}"),
    ),
}
LAYOUTS["suite"] = ()  # names kept as they are
HEADS = {"torchvision_resnet": ("fc.",), "torchvision_video_resnet": ("fc.",), "pytorchvideo_resnet": ("blocks.5.",),
         "suite": ()}
_SUITE_BN = re.compile(r"^(stages\.\d+\.\d+\.conv_[ab])\.1\.([a-z_]+)$")
_COMPILED = {layout: tuple((re.compile(p), t) for p, t in rules) for layout, rules in LAYOUTS.items()}


@dataclass(frozen=True)
class PublicCheckpoint:
    layout: str
    backbone: str
    source: str
    file: str  # the file name as its publisher serves it
    differs: str  # where the public architecture differs from the paper's backbone, and what the mapping does


PUBLIC_CHECKPOINTS: dict[str, PublicCheckpoint] = {
    "torchvision_r3d_18_k400": PublicCheckpoint(
        "torchvision_video_resnet", "r3d18", "torchvision.models.video.r3d_18, R3D_18_Weights.KINETICS400_V1",
        "r3d_18-b3b3357e.pth",
        "none: torchvision's r3d_18 is the R3D-18 of Tran et al. 2018 that the suite's r3d18 builds "
        "(MaCLR Table 2's R3D-18); trained on 16x112x112 clips where MaCLR Table 2 uses 128x128"),
    "pytorchvideo_slow_r50_k400": PublicCheckpoint(
        "pytorchvideo_resnet", "r3d50_slowonly", "pytorchvideo.models.hub.slow_r50 (SLOW_8x8_R50)",
        "SLOW_8x8_R50.pyth",
        "conv1: slow_r50's stem is 1x7x7, MaCLR §3.3 sets the temporal kernel of conv1 to 5; the 1x7x7 "
        "kernel is inflated to 5x7x7 (repeated over the 5 taps, divided by 5). Its head pools a fixed "
        "8x7x7 map, the suite's pools adaptively (heads are not loaded). Blocks otherwise identical"),
    "torchvision_resnet50_imagenet": PublicCheckpoint(
        "torchvision_resnet", "r3d50_slowonly", "torchvision.models.resnet50, ResNet50_Weights.IMAGENET1K_V1",
        "resnet50-0676ba61.pth",
        "2D ImageNet ResNet-50 (v1.5: stride on the 3x3 conv, as the suite's blocks); every kernel is "
        "inflated to the slow-only R3D-50's temporal size (conv1 5 taps, res4/res5 conv_a 3 taps, I3D)"),
}


def inflate_kernel(weight: torch.Tensor, frames: int) -> torch.Tensor:
    """I3D inflation (Carreira & Zisserman 2017, §2.3 "Inflating 2D ConvNets into 3D"): a 2D kernel
    (out, in, k, k), or a one-tap 3D one (out, in, 1, k, k), becomes (out, in, frames, k, k) by
    repeating it over the taps and dividing by `frames`, so a clip of identical frames gives the 2D
    network's response (away from the temporal zero padding)."""
    if weight.dim() == 5:
        if weight.shape[2] != 1:
            raise ValueError(f"only a one-tap kernel inflates, got temporal size {weight.shape[2]}")
        weight = weight[:, :, 0]
    return weight.unsqueeze(2).repeat(1, 1, frames, 1, 1) / frames


def temporal_identity(shape: torch.Size) -> torch.Tensor:
    """A (c, c, kt, 1, 1) kernel passing every channel through its centre tap unchanged."""
    out, cin, kt = shape[0], shape[1], shape[2]
    weight = torch.zeros(shape)
    weight[:, :, kt // 2, 0, 0] = torch.eye(out, cin)
    return weight


def factorised_temporal_identity(name: str, want: torch.Tensor) -> torch.Tensor | None:
    """A `map_state_dict` fill: the temporal kt x 1 x 1 conv of a P3D-A block (after its 1 x 3 x 3 one)
    has no 2D counterpart and starts as the temporal identity, as MCL's official
    `convert_pretrained_weights` initialises its `conv2_t` (methods/mcl/init.py)."""
    if name.endswith(".conv_b.1.0.weight") and want.shape[2] > 1 and want.shape[3:] == (1, 1) and want.shape[0] == want.shape[1]:
        return temporal_identity(want.shape)
    return None


def _closing_batch_norm(backbone: nn.Module, conv: str) -> str:
    """Name of the last BatchNorm3d inside a block's conv (`conv_b.1` for a 3D conv, `conv_b.1.1` for
    a factorised one, whose BN closes its temporal conv)."""
    module = backbone.get_submodule(conv)
    names = [n for n, m in module.named_modules() if isinstance(m, nn.BatchNorm3d)]
    return f"{conv}.{names[-1]}" if names else f"{conv}.1"


def suite_key(public_key: str, layout: str, backbone: nn.Module) -> str | None:
    """The backbone's name for `public_key` of `layout` (None when the layout has no rule for it)."""
    if layout == "suite":
        closing = _SUITE_BN.match(public_key)
        if not closing:
            return public_key
        try:  # a 3D conv's BN onto the BN closing the target's (possibly factorised) conv
            return f"{_closing_batch_norm(backbone, closing.group(1))}.{closing.group(2)}"
        except AttributeError:
            return public_key
    for pattern, target in _COMPILED[layout]:
        match = pattern.match(public_key)
        if not match:
            continue
        groups = match.groups()
        if target.startswith("stem."):
            return target.format(p=groups[-1] if groups else "")
        block = f"stages.{int(groups[0]) - 1}.{groups[1]}"
        conv, _, rest = target.partition(".")
        param = groups[2] if len(groups) > 2 else ""
        if rest.startswith("BN."):
            try:
                return f"{_closing_batch_norm(backbone, f'{block}.{conv}')}.{param}"
            except AttributeError:  # no such block: reported as a key without a place
                return f"{block}.{conv}.1.{param}"
        return f"{block}.{target.format(p=param)}"
    return None


def map_state_dict(backbone: nn.Module, state: dict[str, torch.Tensor], layout: str, source: str,
                   fill: Callable[[str, torch.Tensor], torch.Tensor | None] | None = None,
                   hint: str = "") -> dict[str, torch.Tensor]:
    """The backbone's full state dict from a public `layout` state dict (see the module docstring).

    `fill(name, target_tensor)` may supply a backbone weight the layout has no counterpart for (MCL's
    temporal identity); anything else unfilled, unplaced or misshapen is a CheckpointError naming `source`."""
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown checkpoint layout {layout!r}; known: {', '.join(LAYOUTS)}")
    target = backbone.state_dict()
    out, unknown, bad_shape = {}, [], []
    for name, value in state.items():
        if name.startswith(HEADS[layout]):
            continue
        mapped = suite_key(name, layout, backbone)
        if mapped is None or mapped not in target:
            unknown.append(name if mapped is None else f"{name} -> {mapped}")
            continue
        want = target[mapped]
        one_tap = value.dim() == 4 or (value.dim() == 5 and value.shape[2] == 1)
        if want.dim() == 5 and one_tap and value.shape[:2] == want.shape[:2] and value.shape[-2:] == want.shape[3:]:
            value = inflate_kernel(value, want.shape[2])
        if value.shape != want.shape:
            bad_shape.append(f"{name} {tuple(value.shape)} -> {mapped} {tuple(want.shape)}")
            continue
        out[mapped] = value.to(want.dtype)
    missing = []
    for name, want in target.items():
        if name in out:
            continue
        filled = fill(name, want) if fill else None
        if filled is not None:
            out[name] = filled
        elif name.endswith("num_batches_tracked"):
            out[name] = want.clone()
        else:
            missing.append(name)
    problems = []
    if unknown:
        problems.append(f"{len(unknown)} key(s) the backbone has no place for (e.g. {', '.join(unknown[:3])})")
    if bad_shape:
        problems.append(f"{len(bad_shape)} shape mismatch(es) (e.g. {'; '.join(bad_shape[:3])})")
    if missing:
        problems.append(f"{len(missing)} backbone weight(s) the file does not provide (e.g. {', '.join(missing[:3])})")
    if problems:
        raise CheckpointError(f"{source}: does not match the backbone: {'; '.join(problems)}."
                              + (f" {hint}" if hint else f" Expected a {layout} state dict of the backbone's depth and width."))
    return out


def read_public_weights(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """A state dict from a public checkpoint file: plain, or under `state_dict` / `model_state`
    (pytorchvideo's .pyth) / `model`, with any DataParallel `module.` prefix removed."""
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such checkpoint file; the config points {what} at it: download it "
                                f"there or point the config at another file")
    data = torch_load(path)
    for wrapper in ("state_dict", "model_state", "model"):
        if isinstance(data, dict) and isinstance(data.get(wrapper), dict):
            data = data[wrapper]
            break
    if not isinstance(data, dict) or not data or not all(torch.is_tensor(v) for v in data.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors (nor a checkpoint with one under "
                              f"state_dict / model_state / model)")
    return {k.removeprefix("module."): v for k, v in data.items()}


def load_public_checkpoint(backbone: nn.Module, path: str | Path, name: str) -> PublicCheckpoint:
    """Load public checkpoint `name` (a key of PUBLIC_CHECKPOINTS) from `path` into `backbone`, in place."""
    if name not in PUBLIC_CHECKPOINTS:
        raise ConfigError(f"unknown public checkpoint {name!r}; known: {', '.join(PUBLIC_CHECKPOINTS)}")
    entry = PUBLIC_CHECKPOINTS[name]
    state = read_public_weights(path, f"public checkpoint {name} ({entry.source})")
    backbone.load_state_dict(map_state_dict(backbone, state, entry.layout, str(path),
                                            hint=f"Expected {entry.source} for backbone {entry.backbone}."))
    return entry
