"""Adroit's oracle reward is the release's (mj_envs v0): the hand is paid to approach the object.

gymnasium-robotics 1.4.2's v1 door, hammer and relocate envs add ``+0.1 * ||palm - object||``; the
release subtracts it. Each check steps a real env with random actions and compares, on the state the
env reached, our reward with the package's own v1 reward, whose only difference is that sign.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.consistency import settings
from common.runs import DENSE_RULE_CHANGED_TASKS, UNRECORDED_DENSE_REWARD, RunConfig
from suites.train import ConfigMismatch, check_config
from tasks.registry import names, spec
from tasks.simulators import ADROIT_DENSE, make_simulator

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"
# task -> (palm site attribute, object position) read from a gymnasium-robotics env
HAND_TO_OBJECT = {
    "door": lambda e: (e.data.site_xpos[e.grasp_site_id], e.data.site_xpos[e.handle_site_id]),
    "hammer": lambda e: (e.data.site_xpos[e.S_grasp_site_id], e.data.xpos[e.obj_body_id]),
    "relocate": lambda e: (e.data.site_xpos[e.S_grasp_site_id], e.data.xpos[e.obj_body_id]),
}


@pytest.mark.parametrize("task", sorted(HAND_TO_OBJECT))
def test_shaped_reward_is_the_packages_with_the_hand_term_negated(task):
    sim = make_simulator(spec(task), 64)
    sim.reset(0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        _, v1_reward, _, _, _ = sim.env.step(rng.uniform(-1, 1, sim.env.action_space.shape))
        palm, obj = HAND_TO_OBJECT[task](sim.env)
        distance = float(np.linalg.norm(palm - obj))
        assert distance > 0.01
        assert ADROIT_DENSE[task](sim.env) == pytest.approx(v1_reward - 0.2 * distance, abs=1e-9)
    sim.close()


def test_door_reward_by_hand_at_reset_and_the_simulator_reports_it():
    """At reset the door is shut and still: the reward is -0.1 * palm-handle distance - 0.1 * 1.57^2."""
    sim = make_simulator(spec("door"), 64)
    sim.reset(0)
    e = sim.env
    palm, handle = e.data.site_xpos[e.grasp_site_id], e.data.site_xpos[e.handle_site_id]
    hinge = float(e.data.qpos[e.door_hinge_addrs])
    by_hand = -0.1 * np.linalg.norm(palm - handle) - 0.1 * (hinge - 1.57) ** 2 - 1e-5 * np.sum(e.data.qvel**2)
    assert hinge < 0.2 and ADROIT_DENSE["door"](e) == pytest.approx(by_hand)
    step = sim.step(np.zeros(e.action_space.shape))
    assert step.dense_reward == pytest.approx(ADROIT_DENSE["door"](e))
    sim.close()


def test_pen_keeps_the_envs_own_reward():
    """Pen's shaped reward has no such term: the simulator reports the env's reward unchanged."""
    assert "pen" not in ADROIT_DENSE
    ours, raw = make_simulator(spec("pen"), 64), make_simulator(spec("pen"), 64)
    ours.reset(0)
    raw.reset(0)
    action = np.full(raw.env.action_space.shape, 0.3)
    assert ours.step(action).dense_reward == raw.env.step(action)[1]
    ours.close()
    raw.close()


def test_the_task_registry_names_the_rule_each_simulator_applies():
    for task in names("adroit", include_optional=True):
        rule = spec(task).dense_reward
        assert rule in ("env", "mj_envs_v0")
        assert (rule == "mj_envs_v0") == (task in ADROIT_DENSE), task


def test_a_run_recorded_before_the_rule_is_told_apart_from_todays_on_adroit_only():
    # the run schema's list of tasks whose rule changed is the registry's list of tasks not on "env"
    assert DENSE_RULE_CHANGED_TASKS == {
        t for t in names("adroit", include_optional=True) if spec(t).dense_reward != "env"
    }
    assert RunConfig.upgraded({"task": "door"})["dense_reward"] == UNRECORDED_DENSE_REWARD
    assert RunConfig.upgraded({"task": "pen"})["dense_reward"] == "env"
    assert RunConfig.upgraded({"task": "door", "dense_reward": "mj_envs_v0"})["dense_reward"] == "mj_envs_v0"
    old, new = {"task": "door", "frames": 100}, {"task": "door", "frames": 100, "dense_reward": "mj_envs_v0"}
    assert settings(old)["dense_reward (door)"] != settings(new)["dense_reward (door)"]
    assert (
        settings({"task": "reach"})["dense_reward (reach)"]
        == settings({"task": "reach", "dense_reward": "env"})["dense_reward (reach)"]
    )


def test_an_old_adroit_run_directory_refuses_a_relaunch_under_the_release_reward(tmp_path):

    # A config as written before runs recorded their dense rule: a shipped door run's, without the key.
    shipped = REFERENCE / "pilots/adroit3-100k-release-reward/adroit3/dense/door/seed_0/config.json"
    old = json.loads(shipped.read_text())
    assert old.pop("dense_reward") == "mj_envs_v0"
    (tmp_path / "config.json").write_text(json.dumps(old))
    today = RunConfig.from_dict({**old, "dense_reward": "mj_envs_v0"})
    with pytest.raises(ConfigMismatch, match="dense_reward: 'gymnasium_robotics_v1' there, 'mj_envs_v0' now"):
        check_config(today, tmp_path)
    check_config(RunConfig.from_dict(old), tmp_path)  # the same rule: accepted
