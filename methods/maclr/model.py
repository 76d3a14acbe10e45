"""MaCLR on the shared engine (§3): two pathways (§3.3), each an online encoder with a momentum
copy and a queue of negatives (§3.1), trained with L = L_v + L_m + L_mv (Eq. 3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from datasets.motion.flow import KINDS
from methods.backbones import build_backbone
from methods.maclr.data import MaCLRPretrainData
from methods.maclr.losses import loss_terms, maclr_loss
from methods.training.checkpoint import input_block
from methods.training.contrastive import MLPHead, NegativeQueue, gather_from_all, grouped_forward, momentum_copy, momentum_update, shuffled_forward
from methods.training.method import DataSources, PretrainMethod, TransferEncoder

# The sample keys of each pathway's query and key clips (methods.maclr.data).
CLIP_KEYS = {"visual": ("v_q", "v_k"), "motion": ("m_q", "m_k")}


class Encoder(nn.Module):
    """Backbone -> projection head -> L2-normalised embedding."""

    def __init__(self, backbone: nn.Module, embedding_dim: int):
        super().__init__()
        self.backbone = backbone
        width = backbone.out_dim
        # The paper gives only the 128-d output; MoCo v2's 2-layer MLP head (our choice).
        self.head = MLPHead(width, width, embedding_dim, layers=2)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.backbone(clip)), dim=1)


def build_pathway_backbone(cfg: dict, pathway: str) -> nn.Module:
    """The backbone of `pathway` ("visual" or "motion") as the config specifies it."""
    section = cfg[pathway]
    in_channels = 3 if pathway == "visual" else KINDS[section["input"]]
    return build_backbone(section["backbone"], width_multiplier=float(section["width_multiplier"]), in_channels=in_channels)


class Pathways(nn.ModuleDict):
    """Encoders by pathway name; one forward call embeds a dict of clips."""

    def forward(self, clips: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {name: encoder(clips[name]) for name, encoder in self.items()}


class MaCLR(PretrainMethod):
    """Online and momentum encoders of the pathways a variant uses, and their queues."""

    name = "maclr"

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        self.pathways = list(cfg["pathways"])
        self.online = Pathways({p: Encoder(build_pathway_backbone(cfg, p), cfg["embedding_dim"]) for p in self.pathways})
        self.momentum = momentum_copy(self.online)
        self.queues = nn.ModuleDict({p: NegativeQueue(int(cfg["queue_size"]), int(cfg["embedding_dim"])) for p in self.pathways})
        self._keys: dict[str, torch.Tensor] = {}

    @staticmethod
    def pretrain_inputs(cfg: dict) -> list[str]:
        return (["rgb"] if "visual" in cfg["pathways"] else []) + ([cfg["motion"]["input"]] if "motion" in cfg["pathways"] else [])

    @staticmethod
    def transfer_input(cfg: dict) -> str:
        # §3: the Visual pathway is transferred; M-only transfers its Motion pathway.
        return "rgb" if cfg["eval_pathway"] == "visual" else cfg["motion"]["input"]

    @staticmethod
    def extra_transfer_inputs(cfg: dict) -> list[str]:
        return [cfg["motion"]["input"]] if _has_second_pathway(cfg) else []

    @staticmethod
    def describe(cfg: dict, pretrain: str) -> str:
        v, m = cfg["visual"], cfg["motion"]
        motion = (f", motion {m['input']} {m['clip']['num_frames']}x{m['clip']['stride']} (gamma {m['threshold']})"
                  if "motion" in cfg["pathways"] else "")
        return (f"MaCLR {cfg['variant']} on {pretrain}: {cfg['epochs'][pretrain]} epochs, batch {cfg['batch_size']}, "
                f"losses {'+'.join(cfg['losses'])}, visual {v['backbone']} {v['clip']['num_frames']}x{v['clip']['stride']}"
                f"x{v['clip']['crop_size']}^2{motion}, queue {cfg['queue_size']}, decoder {cfg['decoder']}")

    def pretrain_dataset(self, manifest, sources: DataSources, seed: int) -> MaCLRPretrainData:
        motion_cache = sources.cache(self.cfg["motion"]["input"]) if "motion" in self.pathways else None
        return MaCLRPretrainData(manifest, sources.root, motion_cache, self.cfg, seed, sources.video_dir)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        shuffle = self.cfg.get("batch_norm") == "shuffle"
        groups = int(self.cfg.get("bn_groups", 1)) if shuffle else 1  # sub-batches standing for processes
        queries = grouped_forward(self.online, {p: batch[CLIP_KEYS[p][0]] for p in self.pathways}, groups)
        key_clips = {p: batch[CLIP_KEYS[p][1]] for p in self.pathways}
        with torch.no_grad():
            self._keys = shuffled_forward(self.momentum, key_clips, groups) if shuffle else self.momentum(key_clips)
        return loss_terms(self.cfg, queries, self._keys, batch["video_index"], self.queues)

    def total_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        return maclr_loss(terms, self.cfg["losses"])

    def after_step(self, batch: dict[str, torch.Tensor]) -> None:
        momentum_update(self.online, self.momentum, float(self.cfg["momentum"]))
        video_index = gather_from_all(batch["video_index"])  # every process's keys enter the queues
        for p in self.pathways:
            self.queues[p].push(gather_from_all(self._keys[p]), video_index)

    def step_log(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        # Videos with no clip above the motion threshold, sampled uniformly instead (data.py).
        return {"threshold_fallbacks": int(batch["threshold_fallback"].sum())}

    @staticmethod
    def transfer_settings(cfg: dict) -> dict:
        """The transferred pathway's width and clip (`eval_pathway`), with the visual normalisation."""
        return _pathway_settings(cfg, cfg["eval_pathway"])

    def transfer_encoder(self) -> TransferEncoder:
        """The Visual pathway (§3), or the Motion pathway for M-only, and how to feed it."""
        return self._pathway_encoder(self.cfg["eval_pathway"])

    def extra_transfer_encoders(self) -> dict[str, TransferEncoder]:
        """The Motion pathway beside the transferred Visual one, where both were trained: Table 2's
        "V+F" keeps it "during inference" (protocol finetune_vf); retrieval reports it too."""
        return {"motion": self._pathway_encoder("motion")} if _has_second_pathway(self.cfg) else {}

    def _pathway_encoder(self, pathway: str) -> TransferEncoder:
        cfg, settings = self.cfg, _pathway_settings(self.cfg, pathway)
        kind = "rgb" if pathway == "visual" else cfg["motion"]["input"]
        return TransferEncoder(
            backbone=cfg[pathway]["backbone"], width_multiplier=settings["width_multiplier"],
            in_channels=3 if kind == "rgb" else KINDS[kind], module=self.online[pathway].backbone,
            input=input_block(kind, settings["clip"], settings["mean"], settings["std"],
                              float(cfg["motion"]["input_scale"][kind]) if kind != "rgb" else 1.0),
        )


def _has_second_pathway(cfg: dict) -> bool:
    """Both pathways trained and the Visual one transferred: the Motion one is the checkpoint's extra encoder."""
    return cfg["eval_pathway"] == "visual" and "motion" in cfg["pathways"]


def _pathway_settings(cfg: dict, pathway: str) -> dict:
    """A pathway's width and clip, with the visual normalisation (what its encoder reads)."""
    section = cfg[pathway]
    return {"width_multiplier": float(section["width_multiplier"]), "clip": section["clip"],
            "mean": cfg["visual"]["normalize_mean"], "std": cfg["visual"]["normalize_std"]}
