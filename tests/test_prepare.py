"""The prepare request: built once per method by the planner, the key runs are grouped by, checked inputs."""

from __future__ import annotations

import dataclasses
import json

import pytest

import rewards
from common.runs import RunConfig
from suites import profiles
from suites import run as suite_run
from suites.plan import RunSpec, expand


class _Recorder(rewards.RewardProvider):
    """A provider whose ``prepare`` records the requests it was given (the runner's only contract)."""

    prepare_overrides = ("context",)
    calls: list = []

    def label_episode(self, frames, env_rewards):
        return rewards.validate_episode(frames, env_rewards)[1]

    @classmethod
    def prepare(cls, request, log=print):
        cls.calls.append(request)


def test_methods_that_differ_only_in_other_overrides_share_one_request():
    alpha = expand("ablate_alpha", "smoke")  # four alpha values: nothing else to prepare
    assert len({r.prepare for r in alpha}) == 1
    req = alpha[0].prepare
    assert (req.domain, req.tasks, req.preset, req.pretrain_steps, req.expert_episodes, req.reports) == (
        "adroit",
        ("door",),
        "small",
        30,
        2,
        False,
    )
    context = expand("ablate_context", "smoke")  # the context changes the model to pretrain
    assert sorted(r.prepare.override("context") for r in context) == [1, 2, 4, 8]
    assert all(r.config.provider_overrides["preset"] == "small" for r in context)


def test_runner_prepares_each_provider_and_request_once_with_the_union_of_tasks(tmp_path):
    rewards.register("recorder_test")(_Recorder)
    _Recorder.calls = []
    base = dataclasses.replace(
        expand("smoke", methods=["sparse"], results=tmp_path)[0].config, provider="recorder_test"
    )
    try:

        def run(task, context, alpha):
            req = rewards.PrepareRequest.make(
                _Recorder,
                overrides={"context": context, "alpha": alpha},
                domain="metaworld",
                tasks=(task,),
                pretrain_steps=3,
            )
            return RunSpec(dataclasses.replace(base, task=task), tmp_path / task, req)

        suite_run.prepare(
            [run("reach", 2, 0.5), run("door-close", 2, 0.9), run("reach", 4, 0.5), RunSpec(base, tmp_path, None)],
            log=lambda m: None,
        )
    finally:
        rewards.unregister("recorder_test")
    calls = sorted(_Recorder.calls, key=lambda r: r.override("context"))
    assert [(c.tasks, c.override("context"), c.override("alpha")) for c in calls] == [
        (("door-close", "reach"), 2, None),
        (("reach",), 4, None),
    ]  # alpha is not a prepare override
    assert all(c.pretrain_steps == 3 and c.precision == "fp32" for c in calls)


@pytest.mark.parametrize(
    "fields, message",
    [
        (dict(domain="dmc"), r"unknown domain 'dmc'; valid: metaworld, adroit"),
        (dict(preset="huge"), r"unknown preset 'huge'; valid: small, paper"),
        (dict(precision="fp16"), r"unknown precision 'fp16'; valid: fp32, bf16"),
        (dict(pretrain_steps=0), r"pretrain_steps: expected an int >= 1 or None"),
        (dict(pretrain_steps={"vqd": 10}), r"unknown model 'vqd'; valid: codec, videogpt, vqdiffusion"),
        (dict(pretrain_steps={"codec": 0}), r"pretrain_steps\['codec'\]: expected an int >= 1 or None"),
        (dict(tasks="reach"), r"tasks: expected a sequence of task names"),
        (dict(overrides=(("context", {"a": 1}),)), r"override 'context': a prepare override must be a plain value"),
    ],
)
def test_bad_requests_say_what_is_valid(fields, message):
    with pytest.raises(ValueError, match=message):
        rewards.PrepareRequest(**{"domain": "metaworld", "tasks": ("reach",), **fields})


def test_request_is_a_hashable_value_and_records_as_json():
    a = rewards.PrepareRequest("metaworld", ("reach", "door-close", "reach"), overrides=(("steps", 5), ("context", 2)))
    b = rewards.PrepareRequest("metaworld", ["door-close", "reach"], overrides=(("context", 2), ("steps", 5)))
    assert a == b and hash(a) == hash(b) and a.tasks == ("door-close", "reach")
    assert a.to_dict()["overrides"] == {"context": 2, "steps": 5} and a.with_tasks(()).tasks == ()


@pytest.mark.parametrize("name", sorted(n for n in rewards.available() if rewards.get(n).prepare_overrides))
def test_prepare_reads_each_setting_from_the_provider_s_own_defaults(name):
    """``prepare`` takes a setting the method does not override from the constructor's default (one place),
    so a provider's runs and its preparation cannot disagree about, e.g., a video model's context."""
    cls = rewards.get(name)
    bare = rewards.PrepareRequest(domain="metaworld", tasks=("reach",))
    for setting in cls.prepare_overrides:
        assert cls.setting(bare, setting) == cls.default(setting)
        changed = rewards.PrepareRequest.make(cls, overrides={setting: "other"}, domain="metaworld", tasks=("reach",))
        assert cls.setting(changed, setting) == "other"


def test_a_setting_the_request_does_not_keep_is_refused_naming_those_it_does():
    cls = rewards.get("diffusion_reward")
    with pytest.raises(ValueError, match="keeps only context, steps"):
        cls.setting(rewards.PrepareRequest(domain="metaworld", tasks=("reach",)), "alpha")  # a run-time setting
    with pytest.raises(ValueError, match="no parameter 'bogus'.*its parameters: .*context"):
        cls.default("bogus")


def test_a_per_model_budget_is_one_request_and_records_as_a_mapping():
    a = rewards.PrepareRequest("metaworld", ("reach",), pretrain_steps={"vqdiffusion": 10_000, "codec": 3000})
    b = rewards.PrepareRequest("metaworld", ("reach",), pretrain_steps={"codec": 3000, "vqdiffusion": 10_000})
    assert a == b and hash(a) == hash(b)
    assert (a.steps_for("codec"), a.steps_for("vqdiffusion"), a.steps_for("videogpt")) == (3000, 10_000, None)
    assert a.budget() == a.to_dict()["pretrain_steps"] == {"codec": 3000, "vqdiffusion": 10_000}
    one = rewards.PrepareRequest("metaworld", ("reach",), pretrain_steps=30)
    assert one.steps_for("codec") == one.steps_for("videogpt") == one.budget() == 30


def test_a_run_planned_under_a_per_model_budget_records_it(tmp_path, monkeypatch):
    """A profile's per-model budget reaches the run's prepare request and its config, which reads back as
    written (training each model to its own budget: tests/test_genreward.py)."""
    budget = {"codec": 2, "vqdiffusion": 3, "videogpt": 4}
    smoke = dataclasses.replace(profiles.get("smoke"), pretrain_steps=budget, expert_tail={"vqdiffusion": 20})
    monkeypatch.setattr(profiles, "get", lambda name: smoke)
    methods = ["diffusion_reward", "sparse", "viper", "diffusion_reward:expert_tail=0", "genreward"]
    run, sparse, viper, release, genreward = expand("smoke", methods=methods, results=tmp_path)
    assert run.prepare.steps_for("codec") == 2 and run.prepare.steps_for("vqdiffusion") == 3
    # each run records the budgets of its own models; a reward without a video model none
    assert run.config.pretrain_steps == genreward.config.pretrain_steps == {"codec": 2, "vqdiffusion": 3}
    assert viper.config.pretrain_steps == {"codec": 2, "videogpt": 4} and sparse.config.pretrain_steps is None
    # the profile's tail reaches the VQ-Diffusion rewards that take one; a method's own setting wins
    assert run.config.provider_overrides["expert_tail"] == run.prepare.override("expert_tail") == 20
    assert release.config.provider_overrides["expert_tail"] == 0
    assert "expert_tail" not in viper.config.provider_overrides | genreward.config.provider_overrides
    budget = run.config.pretrain_steps
    written = json.loads(json.dumps(run.config.as_dict()))
    assert written["pretrain_steps"] == budget and RunConfig.from_dict(written) == run.config
