"""CMD on the shared engine (§3, §4.1): the V-Network (the video backbone protocols evaluate), the
I-Network (R2D-10 on I-frames), the M-Network (R3D-10 on motion vectors), the MLP heads g^V, g^I,
g^M_1, g^M_2 and the Transformer T that predicts motion features from the clip's feature map,
trained with J = (1 - alpha) J_I + alpha J_M (Eq. 1-3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.errors import ConfigError
from methods.backbones import build_backbone
from methods.backbones.others import MotionPredictor
from methods.cmd.data import CMDPretrainData
from methods.cmd.losses import (context_matching, joint_objective, motion_prediction, motion_value_cross_entropy,
                                motion_value_mse)
from methods.cmd.regularizer import regularised_finetune_task
from methods.training.checkpoint import input_block
from methods.training.contrastive import MLPHead
from methods.training.method import DataSources, PretrainMethod, TransferEncoder

TASKS = ("context", "motion")
MOTION_LOSSES = ("infonce", "mse", "cross_entropy")  # Table 1 "Loss"
PREDICTORS = ("transformer", "convgru")  # Table 1 "Encoder-Decoder"


class ConvGRUCell(nn.Module):
    """A convolutional GRU cell (Ballas et al. [4]): the GRU's gates as k x k convolutions."""

    def __init__(self, in_dim: int, hidden: int, kernel: int):
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(in_dim + hidden, 2 * hidden, kernel, padding=kernel // 2)
        self.candidate = nn.Conv2d(in_dim + hidden, hidden, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        update, reset = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate(torch.cat([x, reset * h], dim=1)))
        return (1 - update) * h + update * candidate


class ConvGRUPredictor(nn.Module):
    """Table 1's "ConvGRU" encoder-decoder [4, 18] in place of the Transformer: a ConvGRU reads the
    clip's feature map (B, C1, T1, H1, W1) step by step over T1; its state, resized to (H3, W3), then
    predicts the T3 motion feature maps one after the other, each fed back as the next step's input
    (the dense predictive coding of [18]). Layout and sizes are not in the paper (our choices)."""

    def __init__(self, in_dim: int, out_dim: int, out_shape: tuple[int, int, int], hidden: int, kernel: int):
        super().__init__()
        self.out_shape = tuple(out_shape)
        self.encoder = ConvGRUCell(in_dim, hidden, kernel)
        self.decoder = ConvGRUCell(out_dim, hidden, kernel)
        self.out = nn.Conv2d(hidden, out_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, steps, height, width = x.shape
        h = x.new_zeros(b, self.encoder.hidden, height, width)
        for t in range(steps):
            h = self.encoder(x[:, :, t], h)
        h = F.interpolate(h, size=self.out_shape[1:], mode="nearest") if h.shape[-2:] != self.out_shape[1:] else h
        outputs = []
        for _ in range(self.out_shape[0]):
            y = self.out(h)
            outputs.append(y)
            h = self.decoder(y, h)
        return torch.stack(outputs, dim=2)  # (B, C3, T3, H3, W3)


@torch.no_grad()
def feature_shape(backbone: nn.Module, in_channels: int, frames: int, crop: int) -> tuple[int, ...]:
    """(C, T, H, W) of `backbone.forward_features` on one (in_channels, frames, crop, crop) input,
    measured in eval mode (batch-norm statistics untouched): the Transformer's sequence lengths."""
    was_training = backbone.training
    backbone.eval()
    try:
        return tuple(backbone.forward_features(torch.zeros(1, in_channels, frames, crop, crop)).shape[1:])
    finally:
        backbone.train(was_training)


def pointwise(features: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, N, C): the feature map as N = T*H*W points ("flatten", §3.3)."""
    return features.flatten(2).transpose(1, 2)


class CMD(PretrainMethod):
    name = "cmd"

    def __init__(self, cfg: dict):
        super().__init__(cfg)
        tasks, motion = set(cfg["tasks"]), cfg["motion"]
        if not tasks or tasks - set(TASKS):
            raise ConfigError(f"methods/cmd/config.yaml: `tasks: {cfg['tasks']}` must name some of {', '.join(TASKS)}")
        if motion["loss"] not in MOTION_LOSSES:
            raise ConfigError(f"methods/cmd/config.yaml: `motion.loss: {motion['loss']}` is not one of {', '.join(MOTION_LOSSES)}")
        if motion["predictor"] not in PREDICTORS:
            raise ConfigError(f"methods/cmd/config.yaml: `motion.predictor: {motion['predictor']}` is not built "
                              f"(built: {', '.join(PREDICTORS)})")
        clip, dim, hidden = cfg["clip"], int(cfg["embedding_dim"]), int(cfg["head_hidden"])
        crop = int(clip["crop_size"])
        self._pretext: dict[str, float] = {}
        self.v_net = build_backbone(cfg["backbone"], width_multiplier=float(cfg["width_multiplier"]))
        if "context" in tasks:
            self.g_v = MLPHead(self.v_net.out_dim, hidden, dim)
            net = cfg["i_network"]
            self.i_net = build_backbone(net["backbone"], width_multiplier=float(net["width_multiplier"]))
            self.g_i = MLPHead(self.i_net.out_dim, hidden, dim)
        if "motion" in tasks:
            net = cfg["m_network"]
            self.m_net = build_backbone(net["backbone"], width_multiplier=float(net["width_multiplier"]), in_channels=2)
            v_shape = feature_shape(self.v_net, 3, int(clip["num_frames"]), crop)
            m_shape = feature_shape(self.m_net, 2, int(motion["frames"]), crop)
            if motion["predictor"] == "transformer":
                t = cfg["transformer"]
                self.predictor = MotionPredictor(v_shape[0], m_shape[0], v_shape[1] * v_shape[2] * v_shape[3], m_shape[1:],
                                                 d_model=int(t["hidden"]), nhead=int(t["heads"]),
                                                 num_encoder_layers=int(t["encoder_layers"]),
                                                 num_decoder_layers=int(t["decoder_layers"]),
                                                 dim_feedforward=int(t["feedforward"]))
            else:
                g = cfg["convgru"]
                self.predictor = ConvGRUPredictor(v_shape[0], m_shape[0], m_shape[1:], int(g["hidden"]), int(g["kernel"]))
            # g^M_2 embeds predicted features; for Table 1's value losses it predicts the 2 vector
            # components (MSE) or their bins (cross-entropy) instead, and g^M_1 is unused.
            out = {"infonce": dim, "mse": 2, "cross_entropy": 2 * int(motion["bins"])}[motion["loss"]]
            self.g_m2 = MLPHead(m_shape[0], hidden, out)
            if motion["loss"] == "infonce":
                self.g_m1 = MLPHead(m_shape[0], hidden, dim)

    # -- read by the DAG ------------------------------------------------------------------------
    @staticmethod
    def pretrain_inputs(cfg: dict) -> list[str]:
        # I-frames always come from the compressed cache; Table 4's flow row adds the TV-L1 cache.
        flow = cfg["motion"]["source"] == "tvl1_flow" and "motion" in cfg["tasks"]
        return ["rgb", "compressed", "tvl1"] if flow else ["rgb", "compressed"]

    @staticmethod
    def extra_transfer_inputs(cfg: dict) -> list[str]:
        return ["compressed"] if extra_networks(cfg) else []

    @staticmethod
    def finetune_inputs(cfg: dict) -> list[str]:
        return ["compressed"] if cfg.get("regularizer_weight") else []

    @staticmethod
    def finetune_task(cfg, checkpoint, train, root, cache, settings, num_classes, seed):
        """Table 6's variants fine-tune with Eq. (2) as a regulariser (methods/cmd/regularizer.py)."""
        if not cfg.get("regularizer_weight"):
            return None
        return regularised_finetune_task(CMD, cfg, checkpoint, train, root, cache, settings, num_classes, seed)

    @staticmethod
    def describe(cfg: dict, pretrain: str) -> str:
        if pretrain == "none":
            return (f"CMD {cfg['variant']}: {cfg['backbone']} at its seeded random start"
                    + (f", fine-tuned with Eq. (2) weighted {cfg['regularizer_weight']}" if cfg.get("regularizer_weight") else ""))
        clip, motion = cfg["clip"], cfg["motion"]
        tasks = " + ".join({"context": "J_I (Eq. 1)", "motion": f"J_M ({motion['loss']}, {motion['period']}, {motion['source']})"}[t]
                           for t in cfg["tasks"])
        return (f"CMD {cfg['variant']} on {pretrain}: {cfg['epochs'][pretrain]} epochs, batch {cfg['batch_size']}, "
                f"V {cfg['backbone']} x{cfg['width_multiplier']} {clip['num_frames']}x{clip['stride']}x{clip['crop_size']}^2, "
                f"{tasks}, {motion['predictor']}, alpha {cfg['alpha']}, MV flip {cfg['mv_flip']}, decoder {cfg['decoder']}")

    # -- the run --------------------------------------------------------------------------------
    def pretrain_dataset(self, manifest, sources: DataSources, seed: int) -> CMDPretrainData:
        flow = sources.cache("tvl1") if "tvl1" in self.pretrain_inputs(self.cfg) else None
        return CMDPretrainData(manifest, sources.root, sources.cache("compressed"), self.cfg, seed, sources.video_dir, flow)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        tau = float(cfg["temperature"])
        self._pretext = {}  # Table 7's accuracies of this step, set by the losses (step_log reads them)
        x = self.v_net.forward_features(batch["clip"])  # (B, C1, T1, H1, W1)
        terms = {}
        if "context" in cfg["tasks"]:
            clip = F.normalize(self.g_v(self.v_net.pool(x).flatten(1)), dim=1)
            iframe = F.normalize(self.g_i(self.i_net(batch["iframe"])), dim=1)
            terms["context"] = context_matching(clip, iframe, tau, self._pretext)
        if "motion" in cfg["tasks"]:
            terms["motion"] = self.motion_term(x, batch)
        return terms

    def motion_term(self, x: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """J_M from the V-Network's feature map `x` (B, C1, T1, H1, W1) and the batch's motion
        inputs: Eq. (2), or Table 1's value losses."""
        motion, tau = self.cfg["motion"], float(self.cfg["temperature"])
        predicted = self.g_m2(pointwise(self.predictor(x)))  # (B, N, out)
        if motion["loss"] == "infonce":
            b, k = batch["negatives"].shape[:2]
            mv = torch.cat([batch["motion"], batch["negatives"].flatten(0, 1)]) if k else batch["motion"]
            target = F.normalize(self.g_m1(pointwise(self.m_net.forward_features(mv))), dim=2)
            hard = target[b:].flatten(0, 1) if k else None
            return motion_prediction(F.normalize(predicted, dim=2), target[:b], tau, hard, self._pretext)
        values = pointwise(F.adaptive_avg_pool3d(batch["motion"], self.predictor.out_shape))  # (B, N, 2)
        if motion["loss"] == "mse":
            return motion_value_mse(predicted, values)
        bins = int(motion["bins"])
        logits = predicted.reshape(*predicted.shape[:2], 2, bins)
        return motion_value_cross_entropy(logits, values, bins)

    def step_log(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        """Table 7's pretext accuracies of the step (percent): `pretext_context_matching_top1` and
        `pretext_motion_prediction_top1`, recorded by Eq. (1)'s and Eq. (2)'s losses from their own
        similarity matrices in this step's forward (methods/cmd/losses.py pretext_top1), so no
        extra forward pass; this process's queries against the whole batch's keys."""
        return {f"pretext_{name}": value for name, value in self._pretext.items()}

    def total_loss(self, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        if len(terms) == 1:  # Table 4's single-modality rows: the one task's loss alone
            return next(iter(terms.values()))
        return joint_objective(terms["context"], terms["motion"], float(self.cfg["alpha"]))

    def transfer_encoder(self) -> TransferEncoder:
        """The V-Network without heads, reading RGB clips (§4.1: the video backbone is evaluated)."""
        cfg = self.cfg
        return TransferEncoder(backbone=cfg["backbone"], width_multiplier=float(cfg["width_multiplier"]), in_channels=3,
                               module=self.v_net,
                               input=input_block("rgb", cfg["clip"], cfg["normalize_mean"], cfg["normalize_std"]))

    def extra_transfer_encoders(self) -> dict[str, TransferEncoder]:
        """The co-trained I-Network and M-Network (Table 5), each with its own input block: one
        I-frame (`compressed` cache, `stream: iframe`, normalised as RGB clips) or the motion
        vectors of the 8 frames after the clip (`stream: mv`). The `clip` of both blocks is the
        V-Network's: the test views are its clips (methods/cmd/sampling.py plan_cmd_test_views)."""
        cfg, encoders = self.cfg, {}
        for name in extra_networks(cfg):
            net = cfg[name]
            if name == "i_network":
                block = input_block("compressed", cfg["clip"], cfg["normalize_mean"], cfg["normalize_std"], stream="iframe")
                module, channels = self.i_net, 3
            else:
                block = input_block("compressed", cfg["clip"], stream="mv", motion_frames=int(cfg["motion"]["frames"]),
                                    period=str(cfg["motion"]["period"]))
                module, channels = self.m_net, 2
            encoders[name] = TransferEncoder(backbone=net["backbone"], width_multiplier=float(net["width_multiplier"]),
                                             in_channels=channels, module=module, input=block)
        return encoders


def extra_networks(cfg: dict) -> list[str]:
    """Which of the I-Network and M-Network a run trains and the checkpoint carries (Table 5): the
    I-Network with the context task; the M-Network with the motion task on motion vectors under
    Eq. (2) (Table 1's value losses leave it untrained; Table 4's flow row feeds it TV-L1 flow, an
    input the checkpoint contract's `compressed` reader does not cut)."""
    names = ["i_network"] if "context" in cfg["tasks"] else []
    if "motion" in cfg["tasks"] and cfg["motion"]["loss"] == "infonce" and cfg["motion"]["source"] == "mv":
        names.append("m_network")
    return names
