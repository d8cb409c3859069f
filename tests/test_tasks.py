"""The pixel envs: API conformance, determinism, experts, errors (real MuJoCo rendering)."""

import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import tasks
from tasks.experts import make_expert
from tasks.simulators import door_success, hammer_success, pen_orientation_similarity, pen_success


def test_registry_splits_match_the_spec():
    assert tasks.names("metaworld") == [
        "assembly",
        "coffee-push",
        "dial-turn",
        "door-close",
        "lever-pull",
        "peg-unplug-side",
        "reach",
    ]
    assert len(tasks.names("metaworld_unseen")) == 8
    assert tasks.names("adroit") == ["door", "hammer", "pen"]
    assert "relocate" in tasks.names("adroit", include_optional=True)
    assert tasks.spec("assembly").action_repeat == 3 and tasks.spec("reach").action_repeat == 2
    assert tasks.spec("pen").horizon == 50 and tasks.spec("door").horizon == 100


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid tasks: .*reach"):
        tasks.make("reachh")
    with pytest.raises(ValueError, match="valid splits"):
        tasks.names("nope")


@pytest.mark.parametrize("name", ["reach", "door"])
def test_check_env(name):
    env = tasks.make(name, seed=0)
    try:
        check_env(env, skip_render_check=True)
        obs, info = env.reset()
        assert obs.shape == (3, 64, 64) and obs.dtype == np.uint8
        assert obs.std() > 5, "the frame should show a scene, not a blank image"
        assert info == {"is_success": False}
        assert env.unwrapped.state.ndim == 1  # the expert's state is not in the observation
    finally:
        env.close()


def _rollout(name, seed, steps=8):
    env = tasks.make(name, seed=seed)
    try:
        frames = [env.reset()[0]]
        rng = np.random.default_rng(0)
        for _ in range(steps):
            frames.append(env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))[0])
        frames.append(env.reset()[0])  # the second episode continues the same seeded stream
        return np.stack(frames)
    finally:
        env.close()


@pytest.mark.parametrize("name", ["reach", "door"])
def test_same_seed_same_frames(name):
    a, b, c = _rollout(name, 3), _rollout(name, 3), _rollout(name, 4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c), "a different seed should give a different goal or layout"


def test_metaworld_frames_are_upright():
    """The corner camera renders upside down in MetaWorld 3; after the 180-degree turn the floor and
    table (bright, textured) fill the bottom of the frame and the dark backdrop the top."""
    env = tasks.make("reach", seed=0)
    try:
        obs = env.reset()[0].astype(float)
    finally:
        env.close()
    assert obs[:, -16:].mean() > obs[:, :16].mean() - 40  # not an upside-down view of the floor
    assert obs[:, 40:].std() > 10


def test_reward_is_success_summed_over_action_repeat_and_horizon_truncates():
    env = tasks.make("reach", seed=0)
    expert = make_expert("reach")
    try:
        env.reset()
        rewards, done, t = [], False, 0
        while not done:
            _, r, terminated, truncated, info = env.step(expert.act(env.unwrapped.state))
            rewards.append(r)
            assert not terminated
            done = truncated
            t += 1
        assert t == tasks.spec("reach").horizon
        assert set(rewards) <= {0.0, 1.0, 2.0} and max(rewards) == 2.0
        assert info["is_success"]
    finally:
        env.close()


def test_pen_terminates_when_the_pen_drops():
    env = tasks.make("pen", seed=0)
    try:
        env.reset()
        rng = np.random.default_rng(0)
        terminated = truncated = False
        t = 0
        while not (terminated or truncated):  # random flailing drops the pen within a few steps
            _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
            t += 1
        assert terminated and t < tasks.spec("pen").horizon
    finally:
        env.close()


def _expert_successes(name, episodes):
    env, expert = tasks.make(name, seed=11), make_expert(name)
    wins = 0
    try:
        for _ in range(episodes):
            env.reset()
            done, success = False, False
            while not done:
                _, _, te, tr, info = env.step(expert.act(env.unwrapped.state))
                success |= info["is_success"]
                done = te or tr
            wins += success
    finally:
        env.close()
    return wins


@pytest.mark.slow
def test_scripted_experts_succeed_on_every_metaworld_task():
    names = tasks.names("metaworld") + tasks.names("metaworld_unseen")
    wins = {n: _expert_successes(n, 2) for n in names}
    assert all(w >= 1 for w in wins.values()), wins
    assert sum(wins.values()) >= 0.9 * 2 * len(names), wins


@pytest.mark.parametrize("name", ["door", "hammer"])
def test_dapg_experts_succeed(name):
    assert _expert_successes(name, 2) == 2


def test_metaworld_goals_are_mt1_train_tasks_shared_with_the_eval_env():
    """docs/protocol.md#metaworld-goals-mt1s-50-train-tasks: 50 MT1 goals per (task, seed); the eval env
    (seed + 1, goal_seed = seed) draws
    from the same 50; another run seed gives another set."""
    train, evaluation, other = (
        tasks.make("reach", seed=0),
        tasks.make("reach", seed=1, goal_seed=0),
        tasks.make("reach", seed=1),
    )
    try:
        sets = [e.unwrapped.simulator.goal_set for e in (train, evaluation, other)]
        assert sets[0].shape[0] == 50 and len(np.unique(sets[0], axis=0)) == 50
        np.testing.assert_array_equal(sets[0], sets[1])
        assert not np.array_equal(sets[0], sets[2])
        drawn = {0: [], 1: []}
        for k, env in enumerate((train, evaluation)):
            for _ in range(10):
                env.reset()
                vec = env.unwrapped.simulator.env._last_rand_vec
                assert np.any(np.all(np.isclose(sets[0], vec), axis=1)), "the goal must be one of the 50"
                drawn[k].append(vec.tobytes())
            assert len(set(drawn[k])) >= 5, "a fresh goal is drawn at each reset"
        assert drawn[0] != drawn[1], "the eval env picks its own sequence of goals"
    finally:
        for e in (train, evaluation, other):
            e.close()


@pytest.mark.parametrize("name", ["reach", "reach-wall"])
def test_goal_marker_is_visible(name):
    """Hiding the goal marker changes >= 4 pixels of the 64x64 frame in >= 95% of resets."""
    env = tasks.make(name, seed=0)
    sim = env.unwrapped.simulator
    assert sim.goal_marker_ids, f"{name} must declare its goal marker"
    changed = []
    try:
        for _ in range(20):
            env.reset()
            shown = sim.render().astype(int)
            with sim.hidden_goal_markers():
                hidden = sim.render().astype(int)
            changed.append(int((np.abs(shown - hidden).max(-1) > 0).sum()))
        np.testing.assert_array_equal(sim.render(), shown)  # the marker is back after the block
    finally:
        env.close()
    assert np.mean(np.array(changed) >= 4) >= 0.95, changed


def _forward(env):
    mujoco.mj_forward(env.model, env.data)


def test_adroit_success_flags_are_the_releases_on_hand_set_states():
    envs = {n: tasks.make(n, seed=0) for n in ("door", "hammer", "pen")}
    try:
        for e in envs.values():
            e.reset()
        door = envs["door"].unwrapped.simulator.env
        for angle, expected in ((1.41, True), (1.39, False), (1.36, False)):  # 1.36: gymnasium says success
            door.data.qpos[door.model.joint("door_hinge").qposadr[0]] = angle
            _forward(door)
            assert door_success(door) is expected, angle

        hammer = envs["hammer"].unwrapped.simulator.env
        q = hammer.model.joint("nail_dir").qposadr[0]
        grid = np.linspace(-0.15, 0.15, 301)
        dist = []
        for v in grid:
            hammer.data.qpos[q] = v
            _forward(hammer)
            dist.append(
                np.linalg.norm(
                    hammer.data.site_xpos[hammer.target_obj_site_id] - hammer.data.site_xpos[hammer.goal_site_id]
                )
            )
        best = grid[int(np.argmin(dist))]
        assert min(dist) < 0.002, "the nail slides onto its goal"
        for offset, expected in ((0.0, True), (0.008, True), (0.012, False), (0.03, False)):
            hammer.data.qpos[q] = best + offset
            _forward(hammer)
            assert hammer_success(hammer) is expected, offset

        pen = envs["pen"].unwrapped.simulator.env
        # the pen's rest axis is x, the target's z: turn the target by 90 degrees about y onto x
        pen.model.body_quat[pen.target_obj_body_id] = (np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0)
        rx, tx = pen.model.joint("OBJRx").qposadr[0], pen.model.joint("OBJTx").qposadr[0]
        pen.data.qpos[rx : rx + 3] = 0
        for angle, shift, expected in (
            (0.0, 0.0, True),
            (0.25, 0.0, True),
            (0.4, 0.0, False),
            (0.0, 0.2, True),
        ):  # 20 cm away: the release has no distance test
            pen.data.qpos[rx] = angle  # OBJRx tilts the pen's axis by `angle`
            pen.data.qpos[tx] = shift
            _forward(pen)
            assert abs(pen_orientation_similarity(pen) - np.cos(angle)) < 1e-3
            assert pen_success(pen) is expected, (angle, shift)
    finally:
        for e in envs.values():
            e.close()


@pytest.mark.parametrize("name", ["reach", "door"])
def test_dense_reward_is_the_envs_shaped_reward(name):
    """info["dense_reward"] (the oracle's reward) is finite and is not the sparse reward."""
    env, expert = tasks.make(name, seed=0), make_expert(name)
    try:
        env.reset()
        sparse, dense, any_success = [], [], []
        for _ in range(40):
            _, r, _, _, info = env.step(expert.act(env.unwrapped.state))
            sparse.append(r)
            dense.append(info["dense_reward"])
            any_success.append(info["is_success"])
    finally:
        env.close()
    assert np.all(np.isfinite(dense)) and len(set(dense)) > 10
    assert not np.allclose(dense, sparse)
    assert all(s == (r > 0) for s, r in zip(any_success, sparse)), "is_success = flag on in any sub-step"


def test_adroit_cameras_at_the_releases_poses():
    for name, slot in (("door", "fixed"), ("hammer", "fixed"), ("pen", "vil_camera")):
        env = tasks.make(name, seed=0)
        try:
            obs = env.reset()[0]
            m = env.unwrapped.simulator.model
            pose = tasks.spec(name).camera_pose
            np.testing.assert_allclose(m.cam_pos[m.camera(slot).id], pose.pos)
            assert obs.std() > 10, f"{name}: the frame should show the scene"
        finally:
            env.close()
    np.testing.assert_allclose(tasks.spec("door").camera_pose.quat, (np.cos(1.57), 0, 0, np.sin(1.57)), atol=1e-6)
