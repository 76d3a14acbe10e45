"""Starting MCL's backbone from a 2D ImageNet network (config.yaml `init`).

§4.2 trains "with the network initialization by MoCo on ImageNet" without saying how 2D weights
become 3D ones. The official code (train.py `--pretrained-model moco_v2_200ep_pretrain.pth.tar`,
`--inflate-weights true`; utils/util.py `convert_pretrained_weights`) loads MoCo v2's ResNet-50
`encoder_q` and inflates it. Here the inflation is I3D's (Carreira & Zisserman 2017): a 2D kernel
k x k becomes T x k x k by repeating it over the T taps and dividing by T, so a clip of identical
frames gives the 2D network's response. The temporal-only convs of a factorised block (P3D-A's
kt x 1 x 1 after each 1 x 3 x 3, `methods/backbones/resnet.py`), which have no 2D counterpart,
start as the temporal identity (centre tap = identity matrix), as the official code's
`convert_pretrained_weights` initialises its `conv2_t`. (The official code places conv1's 2D kernel
on one tap of the 4 x 7 x 7 stem with zeros on the others, rather than repeating it.)

The 2D file is a torchvision-layout ResNet state dict (`conv1`, `bn1`, `layer{1-4}.{j}.conv{1-3}`,
`bn{1-3}`, `downsample.{0,1}`), plain or as MoCo writes it (`{"state_dict": {"module.encoder_q.…"}}`);
`fc.*` (MoCo's projection head or a classifier) is dropped. Every backbone weight must be filled
either from the file or as a temporal identity; anything else is refused by name.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from core.errors import CheckpointError, MissingInputError
from core.io import torch_load

INIT_KINDS = ("scratch", "imagenet_moco_inflated")
# What the official code reads (train.py default --pretrained-model): MoCo v2, 200 epochs, ResNet-50.
EXPECTED_FILE = "moco_v2_200ep_pretrain.pth.tar"
FLAG = "--init-weights FILE (python -m methods.training.pretrain)"
ENCODER_PREFIXES = ("module.encoder_q.", "encoder_q.", "module.")

# torchvision ResNet name -> suite ResNet name (methods/backbones/resnet.py).
_RENAMES = (
    (re.compile(r"^conv1\.weight$"), "stem.0.0.weight"),
    (re.compile(r"^bn1\.(.+)$"), r"stem.0.1.\1"),
    (re.compile(r"^layer(\d)\.(\d+)\.conv1\.weight$"), "stages.{s}.{b}.conv_a.0.weight"),
    (re.compile(r"^layer(\d)\.(\d+)\.bn1\.(.+)$"), "stages.{s}.{b}.conv_a.BN.{p}"),
    (re.compile(r"^layer(\d)\.(\d+)\.conv2\.weight$"), "stages.{s}.{b}.conv_b.0.weight"),
    (re.compile(r"^layer(\d)\.(\d+)\.bn2\.(.+)$"), "stages.{s}.{b}.conv_b.BN.{p}"),
    (re.compile(r"^layer(\d)\.(\d+)\.conv3\.weight$"), "stages.{s}.{b}.conv_c.0.weight"),
    (re.compile(r"^layer(\d)\.(\d+)\.bn3\.(.+)$"), "stages.{s}.{b}.conv_c.1.{p}"),
    (re.compile(r"^layer(\d)\.(\d+)\.downsample\.0\.weight$"), "stages.{s}.{b}.shortcut.0.weight"),
    (re.compile(r"^layer(\d)\.(\d+)\.downsample\.1\.(.+)$"), "stages.{s}.{b}.shortcut.1.{p}"),
)


def inflate_kernel(weight: torch.Tensor, frames: int) -> torch.Tensor:
    """I3D inflation: (out, in, k, k) -> (out, in, frames, k, k), each tap the 2D kernel / frames."""
    return weight.unsqueeze(2).repeat(1, 1, frames, 1, 1) / frames


def temporal_identity(shape: torch.Size) -> torch.Tensor:
    """A (c, c, kt, 1, 1) kernel passing every channel through its centre tap unchanged."""
    out, cin, kt = shape[0], shape[1], shape[2]
    weight = torch.zeros(shape)
    weight[:, :, kt // 2, 0, 0] = torch.eye(out, cin)
    return weight


def read_2d_weights(path: str | Path | None) -> dict[str, torch.Tensor]:
    """The 2D encoder's state dict from `path` (MoCo's `encoder_q` when the file is a MoCo checkpoint)."""
    if not path:
        raise MissingInputError(f"config `init: imagenet_moco_inflated` needs a 2D ImageNet MoCo ResNet-50 weights file "
                                f"(the official code reads {EXPECTED_FILE}, MoCo v2 200 epochs, facebookresearch/moco); "
                                f"none was given: pass it with {FLAG}")
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: no such weights file; `init: imagenet_moco_inflated` expects the 2D ImageNet "
                                f"MoCo ResNet-50 weights ({EXPECTED_FILE}) there: put the file at that path or pass "
                                f"another with {FLAG}")
    data = torch_load(path)
    state = data.get("state_dict", data) if isinstance(data, dict) else data
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors (nor a checkpoint with one under `state_dict`)")
    if any(k.startswith("module.encoder_q.") for k in state):  # MoCo: the query encoder only
        state = {k: v for k, v in state.items() if k.startswith("module.encoder_q.")}
    for prefix in ENCODER_PREFIXES:
        state = {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}
    return state


def _batch_norm_of(backbone: nn.Module, conv: str) -> str:
    """Name of the last BatchNorm3d inside a block's conv (`conv_b.1` for a 3D conv, `conv_b.1.1` for P3D-A)."""
    module = backbone.get_submodule(conv)
    names = [n for n, m in module.named_modules() if isinstance(m, nn.BatchNorm3d)]
    return f"{conv}.{names[-1]}" if names else f"{conv}.1"


def suite_name(name_2d: str, backbone: nn.Module) -> str | None:
    for pattern, target in _RENAMES:
        match = pattern.match(name_2d)
        if not match:
            continue
        if "{s}" not in target:
            return match.expand(target)
        stage, block = int(match.group(1)) - 1, match.group(2)
        param = match.group(3) if match.re.groups >= 3 else None
        name = target.format(s=stage, b=block, p=param)
        for conv in ("conv_a", "conv_b"):  # the BN after a conv that may be factorised (P3D-A)
            prefix = f"stages.{stage}.{block}.{conv}"
            if name.startswith(prefix + ".BN."):
                try:
                    name = _batch_norm_of(backbone, prefix) + name[len(prefix) + 3:]
                except AttributeError:  # no such block: reported as a key without a place
                    return name
        return name
    return None


def inflated_state_dict(backbone: nn.Module, weights_2d: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The backbone's full state dict from the 2D weights (see the module docstring); a CheckpointError
    naming `source` and the first keys at fault when they do not fit the backbone."""
    target = backbone.state_dict()
    out, unknown, bad_shape = {}, [], []
    for name, value in weights_2d.items():
        if name.startswith("fc."):  # MoCo's projection head or an ImageNet classifier: not the backbone's
            continue
        mapped = suite_name(name, backbone)
        if mapped is None or mapped not in target:
            unknown.append(name if mapped is None else f"{name} -> {mapped}")
            continue
        want = target[mapped]
        if value.dim() == 4 and want.dim() == 5 and value.shape[:2] == want.shape[:2] and value.shape[2:] == want.shape[3:]:
            value = inflate_kernel(value, want.shape[2])
        if value.shape != want.shape:
            bad_shape.append(f"{name} {tuple(value.shape)} -> {mapped} {tuple(want.shape)}")
            continue
        out[mapped] = value.to(want.dtype)
    missing = []
    for name, want in target.items():
        if name in out:
            continue
        if name.endswith(".conv_b.1.0.weight") and want.shape[2] > 1 and want.shape[3:] == (1, 1) and want.shape[0] == want.shape[1]:
            out[name] = temporal_identity(want.shape)  # P3D-A's temporal conv after the 1 x 3 x 3 one
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
        raise CheckpointError(f"{source}: does not match the backbone: {'; '.join(problems)}. Expected a torchvision-layout "
                              f"2D ResNet of the backbone's depth and width, e.g. {EXPECTED_FILE} for a ResNet-50 backbone")
    return out


def initialise_from_2d(backbone: nn.Module, path: str | Path | None) -> None:
    """Load the inflated 2D weights of `path` into `backbone` (in place)."""
    backbone.load_state_dict(inflated_state_dict(backbone, read_2d_weights(path), str(path)))
