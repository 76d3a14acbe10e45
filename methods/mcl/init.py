"""Starting MCL's backbone from a 2D ImageNet network (config.yaml `init`).

§4.2 trains "with the network initialization by MoCo on ImageNet" without saying how 2D weights
become 3D ones. The official code (train.py `--pretrained-model moco_v2_200ep_pretrain.pth.tar`,
`--inflate-weights true`; utils/util.py `convert_pretrained_weights`) loads MoCo v2's ResNet-50
`encoder_q` and inflates it. Here the inflation is I3D's (Carreira & Zisserman 2017; methods/backbones/public.py): a 2D kernel
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

from pathlib import Path

import torch
from torch import nn

from core.errors import CheckpointError, MissingInputError
from core.io import torch_load
from methods.backbones.public import factorised_temporal_identity, map_state_dict

INIT_KINDS = ("scratch", "imagenet_moco_inflated")
# What the official code reads (train.py default --pretrained-model): MoCo v2, 200 epochs, ResNet-50.
EXPECTED_FILE = "moco_v2_200ep_pretrain.pth.tar"
FLAG = "--init-weights FILE (python -m methods.training.pretrain)"
ENCODER_PREFIXES = ("module.encoder_q.", "encoder_q.", "module.")


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


def inflated_state_dict(backbone: nn.Module, weights_2d: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The backbone's full state dict from the 2D weights (see the module docstring); a CheckpointError
    naming `source` and the first keys at fault when they do not fit the backbone."""
    return map_state_dict(backbone, weights_2d, "torchvision_resnet", source, fill=factorised_temporal_identity,
                          hint=f"Expected a torchvision-layout 2D ResNet of the backbone's depth and width, "
                               f"e.g. {EXPECTED_FILE} for a ResNet-50 backbone")


def initialise_from_2d(backbone: nn.Module, path: str | Path | None) -> None:
    """Load the inflated 2D weights of `path` into `backbone` (in place)."""
    backbone.load_state_dict(inflated_state_dict(backbone, read_2d_weights(path), str(path)))
