"""MaCLR's objectives on small hand-computed cases (Eq. 1-3), and the shared queue and momentum update."""
import math

import pytest
import torch
import torch.nn.functional as F

from methods.maclr.losses import info_nce, maclr_loss, motion_visual_loss
from methods.training.contrastive import NegativeQueue, momentum_update


def unit(*rows):
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_info_nce_matches_eq1_by_hand():
    q = unit([1.0, 0.0])
    k = unit([1.0, 0.0])  # q.k = 1
    n = unit([0.0, 1.0], [-1.0, 0.0])  # q.n = 0, -1
    tau = 0.5
    expected = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(0 / tau) + math.exp(-1 / tau)))
    assert info_nce(q, k, n, tau).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_masked_negative_leaves_the_denominator():
    q, k = unit([1.0, 0.0]), unit([0.0, 1.0])  # q.k = 0
    n = unit([1.0, 0.0], [0.0, -1.0])  # q.n = 1 (same video, masked), 0
    tau = 0.1
    mask = torch.tensor([[True, False]])
    expected = -math.log(1.0 / (1.0 + 1.0))  # exp(0) / (exp(0) + exp(0))
    assert info_nce(q, k, n, tau, mask).item() == pytest.approx(expected, rel=1e-6)
    assert info_nce(q, k, n, tau).item() > expected  # the unmasked same-video negative would hurt


def test_motion_visual_loss_pairs_visual_queries_with_motion_keys():
    """Eq. (2): IN(v^q, m^k, v^n) + IN(m^q, v^k, m^n), checked term by term."""
    torch.manual_seed(0)
    v_q, v_k, m_q, m_k = (F.normalize(torch.randn(3, 8), dim=1) for _ in range(4))
    v_neg, m_neg = F.normalize(torch.randn(5, 8), dim=1), F.normalize(torch.randn(5, 8), dim=1)
    tau = 0.1
    loss = motion_visual_loss(v_q, v_k, m_q, m_k, v_neg, m_neg, tau)
    expected = info_nce(v_q, m_k, v_neg, tau) + info_nce(m_q, v_k, m_neg, tau)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # Visual queries must be paired with motion keys, not with visual keys.
    wrong = info_nce(v_q, v_k, v_neg, tau) + info_nce(m_q, m_k, m_neg, tau)
    assert loss.item() != pytest.approx(wrong.item(), rel=1e-3)


def test_maclr_loss_sums_only_enabled_terms():
    terms = {"v": torch.tensor(1.0), "m": torch.tensor(2.0), "mv": torch.tensor(4.0)}
    assert maclr_loss(terms, ["v", "m", "mv"]).item() == 7.0  # Eq. (3)
    assert maclr_loss(terms, ["v", "mv"]).item() == 5.0  # Table 1c "-L_m"
    with pytest.raises(KeyError):
        maclr_loss({"v": torch.tensor(1.0)}, ["v", "m"])


def test_queue_never_offers_a_same_video_negative():
    queue = NegativeQueue(size=4, dim=2)
    queue.push(unit([1, 0], [0, 1], [1, 1]), torch.tensor([7, 8, 7]))
    negatives, mask = queue.negatives_for(torch.tensor([7, 9]))
    # Query of video 7: slots 0 and 2 (video 7) and the empty slot 3 are masked.
    assert mask[0].tolist() == [True, False, True, True]
    # Query of video 9: only the empty slot is masked.
    assert mask[1].tolist() == [False, False, False, True]
    # FIFO: two more pushes overwrite slots 3 and 0.
    queue.push(unit([-1, 0], [0, -1]), torch.tensor([1, 2]))
    assert queue.video_index.tolist() == [2, 8, 7, 1]
    assert int(queue.pointer) == 1


def test_masked_negatives_change_nothing_when_all_are_masked():
    q = unit([1.0, 0.0])
    loss = info_nce(q, q, unit([1.0, 0.0]), 0.1, torch.tensor([[True]]))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)  # only the positive remains


def test_momentum_update_is_an_exponential_moving_average():
    online, momentum = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        online.weight.fill_(1.0)
        momentum.weight.fill_(0.0)
    momentum_update(online, momentum, 0.9)
    assert torch.allclose(momentum.weight, torch.full_like(momentum.weight, 0.1))
