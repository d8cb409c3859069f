"""What a launch may name as a method (a suite's label, any registered provider, either with parameters),
and suites read from TOML files: the example file, and every bad key or value refused with the file named."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import rewards
from suites import definitions
from suites import run as suite_run
from suites.definitions import method_label, parse_method, parse_value
from suites.plan import expand
from suites.suite_file import SuiteFileError, from_dict, load

EXAMPLE = Path(__file__).resolve().parents[1] / "suites" / "examples" / "my_suite.toml"


@pytest.mark.parametrize(
    "text, value",
    [
        ("5", 5),
        ("-2", -2),
        ("0.5", 0.5),
        ("1e-4", 1e-4),
        ("true", True),
        ("False", False),
        ("seen", "seen"),
        ("0.5x", "0.5x"),
    ],
)
def test_parameter_values_parse_as_int_float_bool_or_text(text, value):
    parsed = parse_value(text)
    assert parsed == value and type(parsed) is type(value)


def test_any_registered_provider_runs_beside_a_suites_methods(tmp_path):
    suite = definitions.get("smoke")
    assert suite.method("rnd") is suite.methods[1]  # a label of the suite: as it is defined
    dense = suite.method("dense")  # not in smoke: the provider, no overrides
    assert (dense.label, dense.provider, dict(dense.overrides)) == ("dense", "dense", {})
    steps = suite.method("diffusion_reward:steps=5,alpha=0.50")
    assert steps.label == "diffusion_reward-alpha=0.5-steps=5"  # keys sorted, values as parsed
    assert dict(steps.overrides) == {"steps": 5, "alpha": 0.5} and steps.provider == "diffusion_reward"
    runs = expand("smoke", methods=["sparse", "rnd:bonus_scale=0.5", "dense"], results=tmp_path, precision="fp32")
    assert [r.run_dir.relative_to(tmp_path).as_posix() for r in runs] == [
        "smoke/sparse/reach/seed_0",
        "smoke/rnd-bonus_scale=0.5/reach/seed_0",
        "smoke/dense/reach/seed_0",
    ]
    assert runs[1].config.provider == "rnd" and runs[1].config.provider_overrides == {"bonus_scale": 0.5}


def test_parameters_add_to_a_suite_label_of_that_name():
    """``diffusion_reward`` of genreward5 sets ``task_set``: with parameters it keeps it."""
    m = definitions.get("genreward5").method("diffusion_reward:steps=5")
    assert dict(m.overrides) == {"task_set": "genreward", "steps": 5} and m.label == "diffusion_reward-steps=5"
    m = definitions.get("ablate_steps").method("steps_5:alpha=0")
    assert (m.label, m.provider, dict(m.overrides)) == ("steps_5-alpha=0", "diffusion_reward", {"steps": 5, "alpha": 0})


@pytest.mark.parametrize(
    "specs, message",
    [
        (
            ["nope"],
            "suite 'smoke' has no method 'nope' and no reward provider has that name; the suite's methods: "
            "sparse, rnd, amp; registered providers: amp, dense, ",
        ),
        (["rnd:lrr=1"], "method 'rnd:lrr=1': reward 'rnd' has no parameter lrr; it takes: bonus_scale, lr, "),
        (["rnd:seed=1"], "seed is set by the runner for every run"),
        (["rnd:"], "parameter '' is not key=value; expected NAME or NAME:key=value"),
        (["rnd:lr=1,lr=2"], "parameter 'lr' is given twice"),
        (["rnd/x"], "method 'rnd/x': expected NAME or NAME:key=value"),
        (
            ["viper_std:zero_shot_stats=a/b"],
            "method 'viper_std:zero_shot_stats=a/b': zero_shot_stats='a/b' cannot be part of a method label",
        ),
    ],
)
def test_bad_method_specs_say_what_is_wrong(specs, message, tmp_path):
    with pytest.raises(ValueError) as e:
        expand("smoke", methods=specs, results=tmp_path, precision="fp32")
    assert message in str(e.value)


def test_labels_are_folder_names_and_one_per_setting():
    assert method_label("rnd", {"lr": 1e-4, "bonus_scale": 2, "on": True}) == "rnd-bonus_scale=2-lr=0.0001-on=true"
    assert parse_method("viper_std:zero_shot_stats=seen") == ("viper_std", {"zero_shot_stats": "seen"})
    for m in (m for s in definitions.SUITES.values() for m in s.methods):
        assert definitions.LABEL.fullmatch(m.label)  # the built-in labels are valid labels too


def test_the_example_suite_file(tmp_path):
    suite = load(EXAMPLE)
    assert (suite.name, suite.domain, suite.tasks, suite.quick_tasks) == (
        "my_suite",
        "metaworld",
        ("reach", "door-close"),
        ("reach",),
    )
    assert [(m.label, m.provider, dict(m.overrides)) for m in suite.methods] == [
        ("sparse", "sparse", {}),
        ("rnd", "rnd", {}),
        ("rnd-bonus_scale=0.5", "rnd", {"bonus_scale": 0.5}),
        ("diffusion_steps_5", "diffusion_reward", {"steps": 5}),
    ]
    assert dict(suite.seeds) == {"paper": 4} and suite.default_profile == "quick" and not suite.zero_shot
    runs = expand(suite, "quick", results=tmp_path, precision="fp32")
    assert len(runs) == 4 * 1 * 3  # 4 methods x the quick task x 3 seeds
    assert {r.run_dir.parent.parent.parent for r in runs} == {tmp_path / "my_suite"}
    assert len(expand(suite, "paper", methods=["sparse"], results=tmp_path, precision="fp32")) == 2 * 4


GOOD = {"name": "mine", "domain": "metaworld", "tasks": ["reach"], "methods": ["sparse"]}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"taks": ["reach"]}, "unknown key 'taks'; valid keys: name, description, domain, tasks, methods"),
        ({"name": None}, "missing 'name'; required keys: name, domain, tasks, methods"),
        ({"name": "smoke"}, "name 'smoke' is a built-in suite's"),
        ({"name": "a/b"}, "name 'a/b' is the results folder's name"),
        ({"domain": "dmc"}, "unknown domain 'dmc'; valid domains: metaworld, adroit"),
        ({"tasks": "reach"}, "tasks must be a list of task names, got 'reach'"),
        ({"tasks": ["reachh"]}, "tasks: unknown task 'reachh'"),
        ({"tasks": ["door"]}, "tasks: 'door' is a adroit task and the suite's domain is metaworld"),
        ({"quick_tasks": ["door-close"]}, "quick_tasks 'door-close' not in tasks; tasks: reach"),
        ({"methods": []}, "methods is empty"),
        ({"methods": ["nope"]}, "methods[0]: unknown reward provider 'nope'; registered providers: amp, "),
        ({"methods": ["rnd:lrr=1"]}, "methods[0]: overrides of 'rnd': reward 'rnd' has no parameter lrr"),
        ({"methods": [{"provider": "rnd", "overides": {}}]}, "methods[0]: unknown key 'overides'; valid keys: label"),
        ({"methods": [{"label": "x"}]}, "methods[0]: provider must be a reward provider's name, got None"),
        ({"methods": [3]}, "methods[0]: expected a provider name"),
        ({"methods": ["rnd", {"provider": "sparse", "label": "rnd"}]}, "methods[1]: label 'rnd' is used by two"),
        ({"seeds": {"huge": 2}}, "seeds: unknown profile 'huge'; valid profiles: paper, quick, smoke"),
        ({"seeds": {"paper": 0}}, "seeds: paper = 0; a seed count is a whole number >= 1"),
        ({"default_profile": "huge"}, "unknown default_profile 'huge'; valid profiles"),
        ({"zero_shot": "yes"}, "zero_shot must be true or false, got 'yes'"),
    ],
)
def test_bad_suite_files_name_the_file_and_the_key(change, message):
    data = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(SuiteFileError) as e:
        from_dict(data, "mine.toml")
    assert str(e.value).startswith("mine.toml: ") and message in str(e.value), str(e.value)
    assert isinstance(e.value, ValueError)


def test_a_minimal_suite_file_takes_the_defaults():
    suite = from_dict(GOOD, "mine.toml")
    assert suite.quick_tasks == ("reach",) and suite.default_profile == "quick" and suite.description == ""
    assert [m.label for m in suite.methods] == ["sparse"]


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "no such suite file"),
        ("name = ", "not valid TOML"),
        ('name = "mine"\n', "missing 'domain', 'tasks', 'methods'"),
    ],
)
def test_the_runner_refuses_a_bad_suite_file_in_one_line(tmp_path, capsys, text, message):
    path = tmp_path / "mine.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SystemExit) as e:
        suite_run.main(["--suite-file", str(path), "--results", str(tmp_path)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"error: {path}: " in err and message in err


def test_suite_and_suite_file_are_one_choice(capsys):
    with pytest.raises(SystemExit):
        suite_run.main(["--suite", "smoke", "--suite-file", str(EXAMPLE)])
    assert "give --suite or --suite-file, not both" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        suite_run.main([])
    assert "give one of --suite (see --list) and --suite-file" in capsys.readouterr().err


def test_list_names_the_registered_providers(capsys):
    assert suite_run.main(["--list"]) == 0
    out = capsys.readouterr().out.split("reward providers")[1]
    assert out.split(":\n")[1].split() == rewards.available()


@pytest.mark.slow
def test_a_suite_file_runs_end_to_end(tmp_path):
    """Its results live under its name, as a built-in suite's do, with its method labels as folders."""
    path = tmp_path / "two.toml"
    path.write_text(
        'name = "two"\ndomain = "metaworld"\ntasks = ["reach"]\n'
        'methods = ["sparse", '
        '{ label = "rnd_half", provider = "rnd", overrides = { bonus_scale = 0.5 } }]\n'
    )
    results = tmp_path / "results"
    assert (
        suite_run.main(
            [
                "--suite-file",
                str(path),
                "--profile",
                "smoke",
                "--frames",
                "600",
                "--jobs",
                "1",
                "--threads",
                "1",
                "--no-figures",
                "--results",
                str(results),
            ]
        )
        == 0
    )
    for label in ("sparse", "rnd_half"):
        run_dir = results / "two" / label / "reach" / "seed_0"
        assert list(pd.read_csv(run_dir / "eval.csv")["frame"]) == [0, 600]
        config = json.loads((run_dir / "config.json").read_text())
        assert config["suite"] == "two" and config["method"] == label
    assert json.loads((results / "two" / "rnd_half" / "reach" / "seed_0" / "config.json").read_text())[
        "provider_overrides"
    ] == {"bonus_scale": 0.5}
    assert set(pd.read_csv(results / "two" / "scores.csv")["method"]) == {"sparse", "rnd_half"}
