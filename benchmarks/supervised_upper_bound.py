"""How well a network learns a fixture world *with labels*: the upper bound of what any
self-supervised method can show on that world with the same network and clips.

Renders a scale profile's fixture world in memory (`fixtures.k400` of `config/scales/<scale>.yaml`:
world, classes, frames, size), resizes frames to the method's clip short side, and trains a
backbone plus a linear classifier on three quarters of the videos with SGD (one-cycle learning
rate), random clips, crops and flips; reports top-1 on the held-out quarter from one centred clip
per video. The clip defaults to the method's visual clip at that scale, the backbone to its visual
backbone; `--backbone reference3d` is a three-layer 3D CNN with temporal convolutions at full
resolution, a yardstick for whether the world or the network is the limit.

    python -m benchmarks.supervised_upper_bound --scale mini --steps 1500 --out results/benchmarks/upper_bound.json
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from core.config import load_scale, method_config
from core.io import write_json
from datasets.clips.decode import resize_short_side
from datasets.sources.synthetic import render_world_video
from methods.backbones import build_backbone


class Reference3D(nn.Sequential):
    """Three 3D conv layers (16-32-64 channels, temporal kernel 3, no temporal pooling before the
    end): sees motion at full resolution, unlike a slow-only network at a few dozen pixels."""

    out_dim = 64

    def __init__(self):
        layers = []
        for c_in, c_out, kernel, stride in [(3, 16, (3, 5, 5), (1, 2, 2)), (16, 32, 3, (1, 2, 2)), (32, 64, 3, 2)]:
            padding = tuple(k // 2 for k in ((kernel,) * 3 if isinstance(kernel, int) else kernel))
            layers += [nn.Conv3d(c_in, c_out, kernel, stride, padding, bias=False), nn.BatchNorm3d(c_out), nn.ReLU()]
        super().__init__(*layers, nn.AdaptiveAvgPool3d(1), nn.Flatten())


def render_world(fixture: dict, videos: int, short_side: int) -> tuple[torch.Tensor, np.ndarray]:
    """uint8 (videos, T, 3, H, W) frames at `short_side` and their labels (classes in turn)."""
    labels = np.arange(videos) % int(fixture["num_classes"])
    frames = []
    for index, label in enumerate(tqdm(labels, desc="rendering", unit="video")):
        video = render_world_video(fixture["world"], int(label), int(fixture["num_classes"]), int(fixture["frames"]),
                                   int(fixture["height"]), int(fixture["width"]), seed=10_000 + index,
                                   world_options=fixture.get("world_options"))
        frames.append(resize_short_side(torch.from_numpy(video).permute(0, 3, 1, 2), short_side))
    return torch.stack(frames), labels


def sample_clip(video: torch.Tensor, clip: dict, rng: np.random.Generator | None) -> torch.Tensor:
    """Normalised float (3, T, crop, crop): random start, crop and flip, or centred when rng is None."""
    t, crop = int(clip["num_frames"]), int(clip["crop_size"])
    span = (t - 1) * int(clip["stride"]) + 1
    n, _, h, w = video.shape
    if rng is None:
        start, top, left, flip = (n - span) // 2, (h - crop) // 2, (w - crop) // 2, False
    else:
        start, top, left = (int(rng.integers(0, m + 1)) for m in (n - span, h - crop, w - crop))
        flip = bool(rng.random() < 0.5)
    x = video[start : start + span : int(clip["stride"]), :, top : top + crop, left : left + crop].float() / 255
    x = x.flip(-1) if flip else x
    return ((x - 0.45) / 0.225).permute(1, 0, 2, 3)  # MaCLR's normalisation; (3, T, crop, crop)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="mini")
    parser.add_argument("--method", default="maclr", help="whose visual backbone and clip to use")
    parser.add_argument("--backbone", help="a registered backbone or reference3d (default: the method's visual backbone)")
    parser.add_argument("--width", type=float, help="width multiplier (default: the method's at this scale)")
    parser.add_argument("--world", help="fixture world (default: the profile's)")
    parser.add_argument("--clip", nargs="*", default=[], metavar="KEY=VALUE",
                        help="clip overrides, e.g. num_frames=16 stride=1 crop_size=64 short_side=72")
    parser.add_argument("--frame-size", nargs=2, type=int, metavar=("HEIGHT", "WIDTH"), help="rendered frame size (default: the profile's)")
    parser.add_argument("--videos", type=int, default=400)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    visual = method_config(args.method, args.scale)["visual"]
    clip = {**visual["clip"], **{k: int(v) for k, v in (item.split("=", 1) for item in args.clip)}}
    fixture = dict(load_scale(args.scale)["fixtures"]["k400"])
    if args.world and args.world != fixture["world"]:
        fixture.pop("world_options", None)  # the profile's options belong to its own world
    fixture.update({k: v for k, v in (("world", args.world), ("height", args.frame_size and args.frame_size[0]),
                                      ("width", args.frame_size and args.frame_size[1])) if v})
    name = args.backbone or visual["backbone"]
    width = args.width if args.width is not None else float(visual["width_multiplier"])
    net = Reference3D() if name == "reference3d" else build_backbone(name, width_multiplier=width)
    classifier = nn.Linear(net.out_dim, int(fixture["num_classes"]))

    frames, labels = render_world(fixture, args.videos, int(clip["short_side"]))
    held_out = (np.arange(args.videos) // classifier.out_features) % 4 == 0  # whole rounds of classes
    train, test = np.flatnonzero(~held_out), np.flatnonzero(held_out)

    params = list(net.parameters()) + list(classifier.parameters())
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.steps)
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    losses = []
    for _ in tqdm(range(args.steps), desc=f"supervised {name}", unit="step"):
        batch = rng.choice(train, args.batch_size)
        x = torch.stack([sample_clip(frames[i], clip, rng) for i in batch])
        loss = F.cross_entropy(classifier(net(x)), torch.from_numpy(labels[batch]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss))
    net.eval()
    with torch.no_grad():
        logits = torch.cat([classifier(net(torch.stack([sample_clip(frames[i], clip, None) for i in test[k : k + 64]])))
                            for k in range(0, len(test), 64)])
    result = {
        "scale": args.scale, "world": fixture["world"], "frame_size": [fixture["height"], fixture["width"]], "backbone": name, "width_multiplier": width if name != "reference3d" else None,
        "clip": clip, "videos": args.videos, "train_videos": len(train), "test_videos": len(test),
        "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
        "final_train_loss": float(np.mean(losses[-50:])),
        "test_top1": float((logits.argmax(1).numpy() == labels[test]).mean() * 100),
        "chance": 100 / classifier.out_features, "seconds": time.perf_counter() - started,
    }
    print(f"{name}: test top-1 {result['test_top1']:.1f} % (chance {result['chance']:.0f} %), "
          f"final train loss {result['final_train_loss']:.2f}, {result['seconds']:.0f} s")
    if args.out:
        write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
