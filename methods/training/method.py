"""The method contract: what a method folder supplies to the engine.

A method is `methods/<name>/` with a `config.yaml` (its hyperparameters, each cited, and its
`variants:`) and an `__init__.py` whose `METHOD` is a `PretrainMethod` subclass. The engine
(`methods.training.engine`) owns everything else: the loop, seeding, DDP, bf16, resume, logs,
plots and the checkpoint every protocol reads. The one pretraining rule
(`methods/rules.smk`) serves every such folder.

A method supplies:
- its modules, built in `__init__` from the merged config;
- `pretrain_dataset`: index -> dict of tensors (and `set_epoch`, so samples are a function of
  (seed, epoch, index) and a resumed run draws what an uninterrupted one would);
- `forward(batch)`: one step's named loss terms (the engine sums them, or `total_loss` combines
  them); being the module's forward, DDP synchronises it without special cases;
- optional hooks: `after_step` (momentum updates, queues), `stages` (train some submodules for
  some epochs, the rest frozen), `optimizer_groups` (several optimizers), `step_log` (extra
  per-step columns);
- `transfer_encoder`: the encoder protocols evaluate, and the input block saying what it reads;
  optionally `extra_transfer_encoders` (other encoders the checkpoint carries, each with its input);
- the static `pretrain_inputs` / `transfer_input` / `extra_transfer_inputs`, which the DAG reads
  before any run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from core.config import evaluation_clip


class EpochSeededVideos(Dataset):
    """One sample per video of `videos`, drawn from a generator seeded by (seed, epoch, index): a
    run is reproducible, and a resumed run draws what an uninterrupted one would (the engine calls
    `set_epoch` before each epoch). Subclasses cut their sample in `__getitem__` from `sample_rng`."""

    def __init__(self, videos: pd.DataFrame, seed: int):
        self.videos, self.seed, self.epoch = videos.reset_index(drop=True), seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.videos)

    def sample_rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, index])


# What an encoder or a pretraining dataset may read, per video (CONTRIBUTING.md, "Checkpoints"):
# RGB frames; MaCLR's flow edges, optical flow and frame differences; MCL's TV-L1 motion maps;
# CMD's I-frames and motion vectors (one compressed-domain cache).
INPUT_KINDS = ("rgb", "edge", "flow", "diff", "tvl1", "compressed")


@dataclass(frozen=True)
class DataSources:
    """Where a pretraining dataset reads from: the dataset root (official layout), optionally a
    folder of `<video_id>.mp4` transcodes to decode instead (DALI/NVDEC), and a cache folder per
    precomputed input kind."""

    root: Path
    video_dir: Path | None = None
    caches: dict[str, Path] = field(default_factory=dict)

    def cache(self, kind: str) -> Path:
        if kind not in self.caches:
            raise KeyError(f"no --input {kind}=DIR was given, but this method reads {kind}")
        return self.caches[kind]


@dataclass(frozen=True)
class Stage:
    """A stretch of `epochs` epochs in which only the submodules named in `trainable` learn
    (None: every parameter that requires grad); the others are frozen and kept in eval mode.
    The engine builds fresh optimizers at the start of each stage."""

    name: str
    epochs: int
    trainable: tuple[str, ...] | None = None


@dataclass
class TransferEncoder:
    """The encoder a protocol evaluates, with the checkpoint's `input` block (what it reads)."""

    backbone: str
    width_multiplier: float
    in_channels: int
    module: nn.Module
    input: dict


class TrainingTask(nn.Module):
    """What the engine trains: `forward(batch)` returns named loss terms; the hooks have defaults.
    Supervised training (fine-tuning, the supervised and random-init baselines) is a task too."""

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def total_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(terms.values())

    def after_step(self, batch: dict[str, torch.Tensor]) -> None:
        """Work after each optimizer step (momentum encoders, queues)."""

    def stages(self, epochs: int) -> list[Stage]:
        return [Stage("train", epochs)]

    def optimizer_groups(self) -> dict[str, list]:
        """Parameters (or parameter groups) per optimizer; each is built from the config's
        `optimizer:` section, overridden by `optimizers: {<name>: {...}}` where given."""
        return {"main": [p for p in self.parameters() if p.requires_grad]}

    def step_log(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Extra columns of this step's row in log.csv (their sums go into summary.json)."""
        return {}


class PretrainMethod(TrainingTask):
    """Base class of a method (see the module docstring). Subclasses set `name`."""

    name: ClassVar[str] = ""
    # False for a baseline with no pretraining (methods/random_init): rule `pretrain` never serves
    # it. Any method's checkpoint for pretraining set `none` (a seeded random start) comes from
    # rule `random_start` (methods/training/random_start.py).
    pretrains: ClassVar[bool] = True

    def __init__(self, cfg: dict):
        super().__init__()
        self.cfg = cfg

    # -- read by the DAG before any run (pure functions of the merged config) -------------------
    @staticmethod
    def pretrain_inputs(cfg: dict) -> list[str]:
        """The input kinds (INPUT_KINDS) the pretraining dataset reads."""
        return ["rgb"]

    @staticmethod
    def transfer_input(cfg: dict) -> str:
        """The input kind the transferred encoder reads (evaluation needs its cache)."""
        return "rgb"

    @staticmethod
    def extra_transfer_inputs(cfg: dict) -> list[str]:
        """The input kinds the checkpoint's `extra_encoders` read (CMD: `compressed`, for its
        I-Network and M-Network); a protocol that evaluates them needs these caches too."""
        return []

    @staticmethod
    def finetune_inputs(cfg: dict) -> list[str]:
        """The input kinds besides RGB a fine-tuning of this variant's checkpoint reads, when
        `finetune_task` trains with an auxiliary task (CMD Table 6: `compressed`)."""
        return []

    @staticmethod
    def finetune_task(cfg: dict, checkpoint: dict, train: pd.DataFrame, root: Path, cache: Path | None,
                      settings: dict, num_classes: int, seed: int):
        """(task, dataset) that fine-tunes this variant's checkpoint when it trains with more than the
        protocol's classifier (CMD Table 6's motion-prediction regulariser), else None. The task has
        `logits(clip)` for the protocol's test; `settings` is the fine-tuning recipe."""
        return None

    @staticmethod
    def describe(cfg: dict, pretrain: str) -> str:
        """One line of the settings that matter, shown for the job in a dry run."""
        return ""

    @staticmethod
    def transfer_settings(cfg: dict) -> dict:
        """The transferred encoder's `width_multiplier`, `clip`, `mean` and `std`, from the merged
        config's flat keys of those names (`normalize_mean`, `normalize_std`); a method that nests
        them overrides this. A baseline compared with the method (methods/random_init) reads it."""
        return {"width_multiplier": float(cfg["width_multiplier"]), "clip": cfg["clip"],
                "mean": cfg["normalize_mean"], "std": cfg["normalize_std"]}

    @staticmethod
    def evaluation_clip(cfg: dict, evaluation_set: str) -> dict | None:
        """{num_frames, stride} this variant is evaluated at on `evaluation_set` (its config's
        `evaluation_clip`), or None for the pretraining clip; the evaluation rule passes it as --clip."""
        return evaluation_clip(cfg, evaluation_set)

    @staticmethod
    def stand_in(cfg: dict, pretrain: str) -> str | None:
        """What the run trains on instead of the paper's data where the suite cannot have it (the smoke
        ImageNet stand-in of methods/supervised), else None; recorded in the checkpoint's provenance,
        and every table cell it feeds shows it."""
        return None

    @staticmethod
    def init_weights_file(cfg: dict) -> str | None:
        """File name of the weights the config's `init` starts from, None for a seeded random start.
        The pretraining rule passes it as --init-weights from --config <method>_init_weights=PATH,
        else from <data_root>/pretrained/<name> (methods/rules.smk)."""
        return None

    # -- the run --------------------------------------------------------------------------------
    def pretrain_dataset(self, manifest: pd.DataFrame, sources: DataSources, seed: int) -> Dataset:
        raise NotImplementedError

    def transfer_encoder(self) -> TransferEncoder:
        raise NotImplementedError

    def extra_transfer_encoders(self) -> dict[str, TransferEncoder]:
        """Other trained encoders the checkpoint carries beside the transferred one, by name (the
        checkpoint's `extra_encoders`); their input kinds are `extra_transfer_inputs`."""
        return {}
