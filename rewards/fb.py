"""Forward-backward (FB) representation of a successor measure, learned online from replay.

Touati & Ollivier (2021), "Learning one representation to optimize all rewards": the successor measure
``M(s, a, ds') = sum_k gamma^k P(s_{k+1} in ds' | s, a)`` is factored as ``F(s, a)^T B(s') rho(ds')``
(rho = the replay distribution), so for any goal state g, ``F(s, a)^T B(g)`` is (up to rho) how much
discounted time the agent starting with (s, a) spends at g. GenReward's frame-level reward is exactly
this with g the generated key goal frame (``rewards.genreward``).

Choices (and why):

- **Behaviour-policy measure, no z input.** FB for zero-shot control conditions F on a task vector z and
  evaluates the target at ``pi_z(s')``. Here the successor measure is used for scoring, not for control,
  and the replay carries no next action; a continuous-action greedy ``argmax_a F(s', a, z)^T z`` is not
  available either. We therefore learn the measure of the behaviour (replay) policy, ``M^beta``:
  ``F(s, a)`` has no z, and the target at s' uses a state-only head ``G(s') ~ E_{a ~ beta} F(s', a)``,
  which is trained by the same FB loss on (s, s') pairs (the state-only successor measure obeys the
  same Bellman equation with the action marginalised out). So the reward is "how likely the agent's
  own current behaviour, after (s, a), reaches the goal".
- **Loss** (the FB paper's sample form), for a batch of transitions (s_i, a_i, s'_i), pairs (i, j):
  ``L = 1/2 mean_{i != j} (F_i^T B'_j - gamma m_i Fbar'_i^T Bbar'_j)^2 - mean_i F_i^T B'_i`` with
  ``B'_j = B(s'_j)``, ``Fbar'_i = G_target(s'_i)``, ``Bbar`` the target B, and ``m_i = 0`` for a terminal
  transition. The same loss trains G with ``G(s_i)`` in place of ``F_i``.
- **Orthonormality regulariser** ``E[(B(s)^T B(s'))^2] - 2 E[||B(s)||^2]`` on the batch's B(s'_j)
  (= ``||Cov(B) - I||^2`` up to a constant): keeps B from collapsing or scaling freely, so F^T B has a
  fixed scale. Coefficient 1 as the paper.
- Target networks by Polyak averaging (tau 0.01), Adam.

Inputs are generic: an ``encoder`` module maps a state batch to features (a one-hot for the chain
test, a small conv trunk on uint8 frames for the provider), one encoder for the F/G side and one for B.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F_
from torch import nn


def mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inp, hidden),
        nn.LayerNorm(hidden),
        nn.Tanh(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out),
    )


class FBNetworks(nn.Module):
    """F(s, a), G(s) ~ E_a F(s, a) and B(s'), each in R^d; ``make_encoder()`` -> (module, feature dim)."""

    def __init__(
        self, make_encoder: Callable[[], tuple[nn.Module, int]], action_dim: int, z_dim: int = 32, hidden: int = 256
    ) -> None:
        super().__init__()
        self.f_encoder, feat = make_encoder()
        self.b_encoder, b_feat = make_encoder()
        self.forward_sa = mlp(feat + action_dim, hidden, z_dim)
        self.forward_s = mlp(feat, hidden, z_dim)
        self.backward = mlp(b_feat, hidden, z_dim)
        self.z_dim, self.action_dim = int(z_dim), int(action_dim)

    def F(self, s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.forward_sa(torch.cat([self.f_encoder(s), a.float()], dim=1))

    def G(self, s: torch.Tensor) -> torch.Tensor:
        return self.forward_s(self.f_encoder(s))

    def B(self, s: torch.Tensor) -> torch.Tensor:
        return self.backward(self.b_encoder(s))


def _fb_loss(f: torch.Tensor, b_next: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1/2 mean_{i != j} (f_i^T b_j - target_ij)^2 - mean_i f_i^T b_i."""
    m = f @ b_next.T
    n = m.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=m.device)
    diff = m - target
    off_term = 0.5 * diff[off].pow(2).mean() if n > 1 else m.new_zeros(())
    return off_term - torch.diagonal(m).mean()


def orthonormality_loss(b: torch.Tensor) -> torch.Tensor:
    """``mean_{i != j} (b_i^T b_j)^2 - 2 mean_i ||b_i||^2``: minimal when Cov(B) = I."""
    cov = b @ b.T
    n = cov.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=cov.device)
    off_term = cov[off].pow(2).mean() if n > 1 else cov.new_zeros(())
    return off_term - 2.0 * torch.diagonal(cov).mean()


class FBLearner:
    """FB networks + target copies + Adam; ``update`` takes one gradient step on a batch of transitions.

    ``state_dict``/``load_state_dict`` hold everything (weights, targets, optimiser, update count); the
    update uses no randomness, so a restored learner continues bit-for-bit.
    """

    def __init__(
        self,
        nets: FBNetworks,
        gamma: float = 0.98,
        lr: float = 1e-4,
        tau: float = 0.01,
        ortho_coef: float = 1.0,
        device: Any = "cpu",
    ) -> None:
        if not 0.0 <= gamma < 1.0:
            raise ValueError(f"gamma: expected a discount in [0, 1), got {gamma!r}")
        if not lr > 0 or not 0.0 < tau <= 1.0:
            raise ValueError(f"lr must be > 0 and tau in (0, 1], got lr={lr!r}, tau={tau!r}")
        self.nets = nets.to(device)
        self.target = copy.deepcopy(self.nets).requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.nets.parameters(), lr=lr)
        self.gamma, self.tau, self.ortho_coef = float(gamma), float(tau), float(ortho_coef)
        self.num_updates = 0

    def loss(
        self, s: torch.Tensor, a: torch.Tensor, s_next: torch.Tensor, not_done: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.no_grad():
            g_next = self.target.G(s_next)
            b_next_t = self.target.B(s_next)
            target = g_next @ b_next_t.T
            scale = self.gamma if not_done is None else self.gamma * not_done.float().view(-1, 1)
            target = scale * target
        b_next = self.nets.B(s_next)
        l_f = _fb_loss(self.nets.F(s, a), b_next, target)
        l_g = _fb_loss(self.nets.G(s), b_next, target)
        l_o = orthonormality_loss(b_next)
        loss = l_f + l_g + self.ortho_coef * l_o
        return loss, {
            "fb_loss": float(l_f.detach()),
            "fb_g_loss": float(l_g.detach()),
            "fb_ortho_loss": float(l_o.detach()),
        }

    def update(
        self, s: torch.Tensor, a: torch.Tensor, s_next: torch.Tensor, not_done: torch.Tensor | None = None
    ) -> dict[str, float]:
        loss, info = self.loss(s, a, s_next, not_done)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            for p, tp in zip(self.nets.parameters(), self.target.parameters()):
                tp.lerp_(p, self.tau)
        self.num_updates += 1
        return info

    @torch.no_grad()
    def goal_vector(self, goal_states: torch.Tensor) -> torch.Tensor:
        """z_g = mean_k B(g_k) (target B, steadier than the online one). F^T B is linear in B, so
        ``F^T z_g`` is the mean over the goals of each goal's successor-measure score."""
        return self.target.B(goal_states).mean(dim=0)

    @torch.no_grad()
    def score(self, s: torch.Tensor, a: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``F(s, a)^T z`` per sample, float32 [B]."""
        return self.nets.F(s, a) @ z

    def state_dict(self) -> dict[str, Any]:
        return {
            "nets": self.nets.state_dict(),
            "target": self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.nets.load_state_dict(state["nets"])
        self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.num_updates = int(state["num_updates"])


class PixelTrunk(nn.Module):
    """FB's own small conv trunk on uint8 frames (x/255 - 0.5), 64x64 -> 32*7*7 -> 128 (LayerNorm, tanh).

    Its own rather than the agent's encoder: the provider contract gives it pixels only, and sharing the
    agent's encoder would couple two optimisers on one set of weights.

    The input is made standard-contiguous (NCHW) first: a CPU convolution takes another kernel for a
    channels_last tensor (the codec decodes goal frames that way), which sums in another order, so the same
    pixels gave outputs a few ulps apart depending on how the caller's array was strided. A checkpoint
    reloads arrays C-contiguous, so that made a resumed run's z_g differ from the uninterrupted run's
    (a resumed run's rewards must equal the uninterrupted run's). One layout in, one set of numbers out."""

    def __init__(self, image_size: int = 64, out: int = 128) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(3, 32, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, 3, image_size, image_size)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, out), nn.LayerNorm(out), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(obs.contiguous().float() / 255.0 - 0.5))


def one_hot_encoder(n: int) -> Callable[[], tuple[nn.Module, int]]:
    """Encoder factory for integer states 0..n-1 (tabular MDPs, tests)."""
    return lambda: (_OneHot(n), n)


class _OneHot(nn.Module):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return F_.one_hot(s.long().view(-1), self.n).float()
