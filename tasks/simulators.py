"""Simulator back ends: one MuJoCo env per domain behind a three-call interface.

The pixel env (tasks/pixel_env.py) only needs ``reset(seed) -> state``, ``step(action) -> SimStep(state,
success, dropped, dense_reward)`` and ``render() -> uint8 [H, W, 3]``. Each back end steps the raw (unwrapped) env so no
gymnasium wrapper sits on the hot path, and owns its own ``mujoco.Renderer`` set up with the fast
settings of docs/protocol.md#rendering (no shadows, no multi-sampling, no reflections) *before* the GL context
is made: MuJoCo reads them when the context is created, so setting them later has no effect.
"""

from __future__ import annotations

import atexit
import pickle
import weakref
from contextlib import contextmanager
from functools import lru_cache
from typing import Callable, Iterator, NamedTuple

import mujoco
import numpy as np

from tasks.registry import TaskSpec


def fast_render_settings(model: mujoco.MjModel, image_size: int) -> None:
    """About 60 ms -> about 6 ms a 64x64 MetaWorld frame on a CPU (llvmpipe)."""
    model.vis.quality.shadowsize = 0
    model.vis.quality.offsamples = 0
    model.mat_reflectance[:] = 0
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), image_size)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), image_size)


_LIVE: "weakref.WeakSet[Simulator]" = weakref.WeakSet()


_EXIT_HOOK = False


def _close_renderers() -> None:
    # GL contexts freed during interpreter shutdown print EGL errors; free them while EGL still works.
    # Registered after MuJoCo's first context (which registers eglTerminate), so it runs before it.
    for sim in list(_LIVE):
        sim.close_renderer()


class _Renderer(mujoco.Renderer):
    """``mujoco.Renderer`` that a failed construction leaves closable: when its GL context cannot be made
    (``MUJOCO_GL``'s library, device or display missing), MuJoCo's own ``__del__`` reads the context it never
    set and prints an "Exception ignored" traceback beside the real error, which reads like a second bug."""

    _mjr_context = None


class SimStep(NamedTuple):
    """One simulator step: the expert's state, the task's success flag, whether the episode must end
    (pen dropped) and the env's own shaped reward (the oracle "dense" provider sums it)."""

    state: np.ndarray
    success: bool
    dropped: bool
    dense_reward: float


def _camera_id(model: mujoco.MjModel, name: str, spec: TaskSpec) -> int:
    cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, name)
    if cid < 0:
        valid = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        raise ValueError(f"camera {name!r} not in {spec.env_id}; its cameras: {', '.join(valid)}")
    return cid


class _Camera:
    """A named model camera (optionally moved to ``spec.camera_pose``), or a free camera."""

    def __init__(self, model: mujoco.MjModel, spec: TaskSpec):
        if spec.camera_pose is not None:
            pose = spec.camera_pose
            cid = _camera_id(model, pose.slot, spec)
            if model.cam_bodyid[cid] != 0:  # the pose is given in world coordinates
                raise ValueError(f"camera {pose.slot!r} of {spec.env_id} is not fixed to the world")
            model.cam_pos[cid] = pose.pos
            model.cam_quat[cid] = np.asarray(pose.quat) / np.linalg.norm(pose.quat)
            model.cam_mode[cid] = mujoco.mjtCamLight.mjCAMLIGHT_FIXED
            self.camera: int | mujoco.MjvCamera = cid
        elif spec.camera == "free":
            cam = mujoco.MjvCamera()
            mujoco.mjv_defaultFreeCamera(model, cam)
            for key, value in spec.free_camera.items():
                setattr(cam, key, value)
            self.camera = cam
        else:
            self.camera = _camera_id(model, spec.camera, spec)


def enlarge_goal_markers(model: mujoco.MjModel, spec: TaskSpec) -> list[int]:
    """Draw the task's goal-marker sites with the radius the registry gives; returns their site ids.

    Sites have no collision or mass, so only the picture changes
    (docs/protocol.md#goals-visible-in-the-frame: the goal must
    be visible in the agent's frame).
    """
    ids = []
    for site, radius in spec.goal_markers.items():
        sid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, site)
        if sid < 0:
            raise ValueError(f"goal marker site {site!r} not in {spec.env_id}")
        model.site_size[sid, 0] = radius
        ids.append(sid)
    return ids


class Simulator:
    """Base: a raw MuJoCo env, its renderer and camera."""

    flip: bool = False  # rotate the rendered frame by 180 degrees

    def __init__(self, spec: TaskSpec, image_size: int, goal_seed: int = 0):
        self.spec = spec
        self.image_size = image_size
        self.goal_seed = int(goal_seed)
        self.env = self._make_env()
        self.model, self.data = self.env.model, self.env.data
        fast_render_settings(self.model, image_size)
        self._renderer: _Renderer | None = None  # made lazily: the GL context is per process
        self._camera = _Camera(self.model, spec).camera
        self.goal_marker_ids = enlarge_goal_markers(self.model, spec)
        _LIVE.add(self)

    def _make_env(self):
        raise NotImplementedError

    @property
    def action_dim(self) -> int:
        return int(self.env.action_space.shape[0])

    def render(self) -> np.ndarray:
        if self._renderer is None:
            global _EXIT_HOOK
            self._renderer = _Renderer(self.model, self.image_size, self.image_size)
            if not _EXIT_HOOK:
                atexit.register(_close_renderers)
                _EXIT_HOOK = True
        self._renderer.update_scene(self.data, camera=self._camera)
        frame = self._renderer.render()
        return frame[::-1, ::-1] if self.flip else frame

    @contextmanager
    def hidden_goal_markers(self) -> Iterator[None]:
        """Render without the goal markers inside the block (the visibility check of
        docs/protocol.md#goals-visible-in-the-frame)."""
        saved = self.model.site_rgba[self.goal_marker_ids].copy()
        self.model.site_rgba[self.goal_marker_ids, 3] = 0.0
        try:
            yield
        finally:
            self.model.site_rgba[self.goal_marker_ids] = saved

    def close_renderer(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def close(self) -> None:
        self.close_renderer()
        self.env.close()


@lru_cache(maxsize=64)
def mt1_train_tasks(env_id: str, goal_seed: int) -> tuple:
    """The 50 train tasks of ``MT1(env_id, seed=goal_seed)``, built once per process and (task, seed).

    Building MT1 makes a throwaway env and resets it 50 times (about 0.9 s); the trainer's train and
    eval envs share one goal set, so the cache halves that, and repeated envs (tests, collection) pay it
    once. MT1 saves and restores numpy's global RNG, so the cache changes no other random stream.
    """
    import metaworld  # local import: metaworld only for MetaWorld tasks

    return tuple(metaworld.MT1(env_id, seed=int(goal_seed)).train_tasks)


class MetaWorldSimulator(Simulator):
    """A MetaWorld 3.1.1 task whose goal is one of MT1's 50 train tasks, redrawn at every reset.

    As the Diffusion Reward release (its wrapper calls ``set_task(mt1.train_tasks[randint(0, 49)])`` at
    each reset; docs/protocol.md#metaworld-goals-mt1s-50-train-tasks):
    the goal set is ``MT1(<name>-v3, seed=goal_seed)``'s train tasks
    and the pick uses the env's own seeded RNG, so an env's goal sequence is a function of (seed,
    goal_seed). The trainer's eval env has another seed but the same goal_seed, so it draws from the same
    50 goals. The goal is in the state (MT setting), which the scripted experts need; the agent never
    sees the state.
    """

    flip = True  # the corner cameras render upside down in MetaWorld 3.x

    def _make_env(self):
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS  # local import: metaworld only for MetaWorld tasks

        env = ALL_V3_ENVIRONMENTS[self.spec.env_id]()
        self.goal_tasks = mt1_train_tasks(self.spec.env_id, self.goal_seed)
        env.set_task(self.goal_tasks[0])
        # We count the horizon ourselves; MetaWorld's own limit (500 sim steps) would raise on long tasks.
        env.max_path_length = max(int(env.max_path_length), self.spec.horizon * self.spec.action_repeat + 1)
        return env

    @property
    def goal_set(self) -> np.ndarray:
        """The reset vectors (object and goal positions) of the env's 50 goals, float [50, k]."""
        return np.stack([pickle.loads(t.data)["rand_vec"] for t in self.goal_tasks])

    def reset(self, seed: int | None) -> np.ndarray:
        if seed is not None:
            self.env.seed(int(seed))
        self.env.set_task(self.goal_tasks[int(self.env.np_random.integers(len(self.goal_tasks)))])
        state, _ = self.env.reset()
        return state

    def step(self, action: np.ndarray) -> SimStep:
        state, reward, _, _, info = self.env.step(action)
        return SimStep(state, bool(info["success"]), False, float(reward))


def door_success(env) -> bool:
    """mj_envs v0 door: the hinge opened past 1.4 rad (gymnasium-robotics uses 1.35)."""
    return bool(env.data.qpos[env.door_hinge_addrs] > 1.4)


def hammer_success(env) -> bool:
    """mj_envs v0 hammer: the nail's tip within 1 cm of its goal site."""
    nail = env.data.site_xpos[env.target_obj_site_id]
    goal = env.data.site_xpos[env.goal_site_id]
    return bool(np.linalg.norm(nail - goal) < 0.01)


def pen_orientation_similarity(env) -> float:
    d = env.data
    obj = (d.site_xpos[env.obj_t_site_id] - d.site_xpos[env.obj_b_site_id]) / env.pen_length
    tar = (d.site_xpos[env.tar_t_site_id] - d.site_xpos[env.tar_b_site_id]) / env.tar_length
    return float(np.dot(obj, tar))


def pen_success(env) -> bool:
    """The release's pen: orientation similarity > 0.95 only (it commented out the distance test)."""
    return pen_orientation_similarity(env) > 0.95


def relocate_success(env) -> bool:
    """mj_envs v0 relocate: the ball within 10 cm of the target."""
    obj = env.data.xpos[env.obj_body_id]
    target = env.data.site_xpos[env.target_obj_site_id]
    return bool(np.linalg.norm(obj - target) < 0.1)


def door_v0_reward(env) -> float:
    """mj_envs v0 door's shaped reward: get the palm to the handle, open the hinge towards 1.57 rad, a
    small velocity cost, and bonuses past 0.2, 1.0 and 1.35 rad.

    gymnasium-robotics 1.4.2's ``AdroitHandDoor-v1`` computes the same terms but adds ``+0.1 * distance``
    for the first, which pays the hand to move away from the handle (its import warning and PR #220; the
    fix is only in its unreleased v2 envs). The release, like mj_envs, subtracts it.
    """
    d = env.data
    hinge = float(d.qpos[env.door_hinge_addrs])
    palm, handle = d.site_xpos[env.grasp_site_id].ravel(), d.site_xpos[env.handle_site_id].ravel()
    reward = -0.1 * float(np.linalg.norm(palm - handle))
    reward += -0.1 * (hinge - 1.57) ** 2
    reward += -1e-5 * float(np.sum(d.qvel**2))
    reward += 2.0 * (hinge > 0.2) + 8.0 * (hinge > 1.0) + 10.0 * (hinge > 1.35)
    return reward


def hammer_v0_reward(env) -> float:
    """mj_envs v0 hammer's shaped reward: palm to the hammer (``-0.1 * distance``; gymnasium-robotics
    1.4.2 has ``+0.1``, as for door), hammer head to the nail, nail to its goal, a velocity penalty, and
    bonuses for lifting the hammer and for the nail within 2 cm and 1 cm."""
    d = env.data
    hammer, palm = d.xpos[env.obj_body_id].ravel(), d.site_xpos[env.S_grasp_site_id].ravel()
    head, nail = d.site_xpos[env.tool_site_id].ravel(), d.site_xpos[env.target_obj_site_id].ravel()
    goal = d.site_xpos[env.goal_site_id].ravel()
    nail_to_goal = float(np.linalg.norm(nail - goal))
    reward = -0.1 * float(np.linalg.norm(palm - hammer))
    reward -= float(np.linalg.norm(head - nail))
    reward -= 10.0 * nail_to_goal
    reward -= 1e-2 * float(np.linalg.norm(d.qvel.ravel()))
    reward += 2.0 * (hammer[2] > 0.04 and head[2] > 0.04)
    reward += 25.0 * (nail_to_goal < 0.020) + 75.0 * (nail_to_goal < 0.010)
    return reward


def relocate_v0_reward(env) -> float:
    """mj_envs v0 relocate's shaped reward: palm to the ball (``-0.1 * distance``; gymnasium-robotics 1.4.2
    has ``+0.1``), then, once the ball is off the table, a lift bonus and hand and ball to the target, and
    bonuses for the ball within 10 cm and 5 cm of it."""
    d = env.data
    ball, palm = d.xpos[env.obj_body_id].ravel(), d.site_xpos[env.S_grasp_site_id].ravel()
    target = d.site_xpos[env.target_obj_site_id].ravel()
    to_target = float(np.linalg.norm(ball - target))
    reward = -0.1 * float(np.linalg.norm(palm - ball))
    if ball[2] > 0.04:
        reward += 1.0 - 0.5 * float(np.linalg.norm(palm - target)) - 0.5 * to_target
    reward += 10.0 * (to_target < 0.1) + 20.0 * (to_target < 0.05)
    return reward


# The release's (mj_envs v0) shaped rewards where gymnasium-robotics 1.4.2's v1 envs differ from them
# (the sign of the hand-to-object term); pen's is the same in both and comes from the env.
ADROIT_DENSE: dict[str, Callable[[object], float]] = {
    "door": door_v0_reward,
    "hammer": hammer_v0_reward,
    "relocate": relocate_v0_reward,
}


# The release's (mj_envs v0) success flags, per Adroit task; gymnasium-robotics' own flags differ.
ADROIT_SUCCESS: dict[str, Callable[[object], bool]] = {
    "door": door_success,
    "hammer": hammer_success,
    "pen": pen_success,
    "relocate": relocate_success,
}


class AdroitSimulator(Simulator):
    """An Adroit hand task of gymnasium-robotics 1.4.2 with the release's success flag (``ADROIT_SUCCESS``)
    and shaped reward (``ADROIT_DENSE``, else the env's own dense reward), not gymnasium-robotics'."""

    def _make_env(self):
        import gymnasium as gym  # local import: gymnasium-robotics only for Adroit
        import gymnasium_robotics  # local import: gymnasium-robotics only for Adroit

        gym.register_envs(gymnasium_robotics)
        if self.spec.name not in ADROIT_SUCCESS:
            raise ValueError(
                f"no success flag for Adroit task {self.spec.name!r}; known: {', '.join(sorted(ADROIT_SUCCESS))}"
            )
        self._success = ADROIT_SUCCESS[self.spec.name]
        if self.spec.dense_reward == "mj_envs_v0":
            if self.spec.name not in ADROIT_DENSE:
                raise ValueError(
                    f"no mj_envs v0 shaped reward for Adroit task {self.spec.name!r}; known: "
                    f"{', '.join(sorted(ADROIT_DENSE))}"
                )
            self._dense = ADROIT_DENSE[self.spec.name]
        else:
            self._dense = None  # the env's own shaped reward
        # max_episode_steps is irrelevant: we step the unwrapped env and count the horizon ourselves.
        return gym.make(self.spec.env_id, max_episode_steps=10_000, reward_type="dense").unwrapped

    def reset(self, seed: int | None) -> np.ndarray:
        state, _ = self.env.reset(seed=None if seed is None else int(seed))
        return state

    def success(self) -> bool:
        return self._success(self.env)

    def step(self, action: np.ndarray) -> SimStep:
        state, reward, _, _, _ = self.env.step(action)
        if self._dense is not None:
            reward = self._dense(self.env)
        return SimStep(state, self.success(), self._dropped(), float(reward))

    def _dropped(self) -> bool:
        return False


class AdroitPenSimulator(AdroitSimulator):
    """Pen ends its episode when the pen falls (height below 0.075 m, the env's own threshold)."""

    def _dropped(self) -> bool:
        return bool(self.data.xpos[self.env.obj_body_id][2] < 0.075)


SIMULATORS: dict[str, Callable[..., Simulator]] = {
    "metaworld": MetaWorldSimulator,
    "adroit": AdroitSimulator,
}
TASK_SIMULATORS: dict[str, Callable[..., Simulator]] = {"pen": AdroitPenSimulator}


def make_simulator(spec: TaskSpec, image_size: int, goal_seed: int = 0) -> Simulator:
    factory = TASK_SIMULATORS.get(spec.name, SIMULATORS[spec.domain])
    return factory(spec, image_size, goal_seed)
