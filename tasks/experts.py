"""Expert policies behind one interface: ``expert.act(state) -> action`` in [-1, 1].

MetaWorld: the scripted policies shipped with MetaWorld (``metaworld.policies.ENV_POLICY_MAP``), reading
the env's state observation. Adroit: the DAPG policies of Rajeswaran et al. (Apache-2.0; weights and
notice in ``tasks/adroit_dapg/``), deterministic mean action. Both read ``env.unwrapped.state``, which the
pixel env keeps out of the agent's observation.
"""

from __future__ import annotations

from importlib import resources
from typing import Callable, Protocol

import numpy as np

from tasks.registry import TaskSpec
from tasks.registry import spec as task_spec


class Expert(Protocol):
    def act(self, state: np.ndarray) -> np.ndarray: ...


class MetaWorldExpert:
    def __init__(self, spec: TaskSpec):
        from metaworld.policies import ENV_POLICY_MAP  # local import: metaworld only for MetaWorld experts

        self.policy = ENV_POLICY_MAP[spec.env_id]()

    def act(self, state: np.ndarray) -> np.ndarray:
        return np.clip(self.policy.get_action(state), -1.0, 1.0).astype(np.float32)


class DAPGExpert:
    """Two tanh layers and a linear head with input/output normalisation (see adroit_dapg/README.md)."""

    def __init__(self, spec: TaskSpec):
        path = resources.files("tasks") / "adroit_dapg" / f"{spec.name}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"no DAPG weights for {spec.name} at {path}")
        with resources.as_file(path) as p, np.load(p) as w:
            self.w = {k: w[k].astype(np.float64) for k in w.files}

    def act(self, state: np.ndarray) -> np.ndarray:
        w = self.w
        x = (np.asarray(state, np.float64) - w["in_shift"]) / (w["in_scale"] + 1e-8)
        x = np.tanh(w["W0"] @ x + w["b0"])
        x = np.tanh(w["W1"] @ x + w["b1"])
        a = (w["W2"] @ x + w["b2"]) * w["out_scale"] + w["out_shift"]
        return np.clip(a, -1.0, 1.0).astype(np.float32)


EXPERTS: dict[str, Callable[[TaskSpec], Expert]] = {"metaworld": MetaWorldExpert, "adroit": DAPGExpert}


def make_expert(task: str) -> Expert:
    s = task_spec(task)
    return EXPERTS[s.domain](s)
