"""MaCLR's cross-modal term learns on the shared engine where the two pathways share a plain signal.

Each video has a colour; its visual clips and its motion clips (frame differences, three channels)
are that colour plus noise, so the Visual and Motion pathways can both read which video a clip is
from. With the key modality's negatives, L_mv must fall well below its start within a few dozen
steps: the momentum encoders, queues, masks and the engine's loop carry a learnable signal."""
import pandas as pd
import pytest
import torch

from core.config import method_config
from methods.maclr.model import MaCLR
from methods.training.engine import RunSettings, fit
from methods.training.method import EpochSeededVideos

VIDEOS, BATCH, FRAMES, SIZE = 64, 16, 4, 16


class ColourClips(EpochSeededVideos):
    """Four clips per video (v_q, v_k, m_q, m_k): the video's colour plus unit Gaussian noise."""

    def __init__(self, seed: int = 0):
        super().__init__(pd.DataFrame({"video_id": range(VIDEOS)}), seed)
        self.colours = torch.randn(VIDEOS, 3, generator=torch.Generator().manual_seed(seed))

    def __getitem__(self, index: int) -> dict:
        generator = torch.Generator().manual_seed(int(self.sample_rng(index).integers(2**31)))
        clips = {key: self.colours[index][:, None, None, None] + torch.randn(3, FRAMES, SIZE, SIZE, generator=generator)
                 for key in ("v_q", "v_k", "m_q", "m_k")}
        return {**clips, "video_index": torch.tensor(index), "threshold_fallback": torch.tensor(False)}


@pytest.fixture
def one_thread():
    """Small convolutions run fastest on one thread, and a busy machine does not slow them further."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_key_modality_negatives_align_pathways_that_share_a_signal(tmp_path, one_thread):
    torch.manual_seed(0)
    cfg = method_config("maclr", "mini", "mv_key_negatives")
    cfg["motion"]["input"] = "diff"  # three channels, as the colour clips have
    cfg["queue_size"] = 2 * BATCH
    task = MaCLR(cfg)
    settings = RunSettings(epochs=15, batch_size=BATCH, optimizer={"name": "sgd", "lr": 0.02, "momentum": 0.9,
                                                                   "schedule": "constant"},
                           checkpoint_every_epochs=15)
    fit(task, ColourClips(), settings, out=tmp_path)
    log = pd.read_csv(tmp_path / "log.csv")
    filled = log[log["step"] >= 4]  # the queues hold a batch of negatives from the second step on
    start, end = filled["loss_mv"].head(8).mean(), filled["loss_mv"].tail(8).mean()
    assert end < start - 1.5, (start, end)
    assert log["loss_v"].tail(8).mean() < log["loss_v"][log["step"] >= 4].head(8).mean()
