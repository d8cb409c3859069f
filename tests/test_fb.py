"""The forward-backward representation on a tabular chain MDP: the loss falls, and F^T B(goal) ranks states
by how close they are to the goal (the property GenReward's frame-level reward relies on)."""

import copy

import torch

from rewards.base import seeded_init
from rewards.fb import FBLearner, FBNetworks, one_hot_encoder, orthonormality_loss

N = 8  # states 0..7 on a chain; action > 0 steps right, <= 0 steps left (walls at both ends)


def _chain_batch(gen, size):
    s = torch.randint(0, N, (size,), generator=gen)
    a = torch.rand(size, 1, generator=gen) * 2 - 1  # uniformly random behaviour policy
    s_next = (s + torch.where(a[:, 0] > 0, 1, -1)).clamp(0, N - 1)
    return s, a, s_next


def _train(steps, seed=0):
    with seeded_init(seed):
        learner = FBLearner(
            FBNetworks(one_hot_encoder(N), action_dim=1, z_dim=16, hidden=64), gamma=0.9, lr=1e-3, tau=0.05
        )
    gen = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        losses.append(learner.update(*_chain_batch(gen, 128))["fb_loss"])
    return learner, losses


def test_fb_loss_falls_and_ranks_states_by_distance_to_goal():
    learner, losses = _train(400)
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < first - 0.5, (first, last)
    goal = N - 1
    z = learner.goal_vector(torch.tensor([goal]))
    right = torch.ones(N, 1)
    scores = learner.score(torch.arange(N), right, z)
    # nearer the goal scores higher: 6 > 4 > 1 (a random walk with discount 0.9 on 8 states)
    assert scores[6] > scores[4] > scores[1], scores
    # and from the same state, stepping towards the goal beats stepping away
    s = torch.tensor([5])
    assert learner.score(s, torch.ones(1, 1), z) > learner.score(s, -torch.ones(1, 1), z)


def test_orthonormality_regulariser_is_minimal_at_identity_covariance():
    """For B with Cov(B) = s^2 I the regulariser is d s^4 - 2 d s^2 in expectation: smallest at s = 1."""
    gen = torch.Generator().manual_seed(0)
    b = torch.randn(2048, 4, generator=gen)
    losses = {s: float(orthonormality_loss(b * s)) for s in (0.5, 1.0, 2.0)}
    assert losses[1.0] < losses[0.5] and losses[1.0] < losses[2.0], losses
    assert abs(losses[1.0] - (-4.0)) < 0.5  # d - 2d at d = 4


def test_state_dict_resumes_bit_exactly():
    learner, _ = _train(30)
    state = copy.deepcopy(learner.state_dict())
    gen = torch.Generator().manual_seed(7)
    batches = [_chain_batch(gen, 64) for _ in range(5)]
    for b in batches:
        learner.update(*b)
    other, _ = _train(1, seed=3)  # different weights until loaded
    other.load_state_dict(state)
    for b in batches:
        other.update(*b)
    for p, q in zip(learner.nets.parameters(), other.nets.parameters()):
        assert torch.equal(p, q)
    assert other.num_updates == learner.num_updates
