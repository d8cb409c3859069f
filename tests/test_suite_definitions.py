"""What a launch may name as a method: a suite's label, any registered provider, either with parameters."""
from __future__ import annotations

import pytest

import rewards
from suites import definitions
from suites import run as suite_run
from suites.definitions import method_label, parse_method, parse_value
from suites.plan import expand


@pytest.mark.parametrize("text, value", [("5", 5), ("-2", -2), ("0.5", 0.5), ("1e-4", 1e-4), ("true", True),
                                         ("False", False), ("seen", "seen"), ("0.5x", "0.5x")])
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
        "smoke/sparse/reach/seed_0", "smoke/rnd-bonus_scale=0.5/reach/seed_0", "smoke/dense/reach/seed_0"]
    assert runs[1].config["provider"] == "rnd" and runs[1].config["provider_overrides"] == {"bonus_scale": 0.5}


def test_parameters_add_to_a_suite_label_of_that_name():
    """``diffusion_reward`` of genreward5 sets ``task_set``: with parameters it keeps it."""
    m = definitions.get("genreward5").method("diffusion_reward:steps=5")
    assert dict(m.overrides) == {"task_set": "genreward", "steps": 5} and m.label == "diffusion_reward-steps=5"
    m = definitions.get("ablate_steps").method("steps_5:alpha=0")
    assert (m.label, m.provider, dict(m.overrides)) == ("steps_5-alpha=0", "diffusion_reward", {"steps": 5, "alpha": 0})


@pytest.mark.parametrize("specs, message", [
    (["nope"], "suite 'smoke' has no method 'nope' and no reward provider has that name; the suite's methods: "
               "sparse, rnd, amp; registered providers: amp, dense, "),
    (["rnd:lrr=1"], "method 'rnd:lrr=1': reward 'rnd' has no parameter lrr; it takes: bonus_scale, lr, "),
    (["rnd:seed=1"], "seed is set by the runner for every run"),
    (["rnd:"], "parameter '' is not key=value; expected NAME or NAME:key=value"),
    (["rnd:lr=1,lr=2"], "parameter 'lr' is given twice"),
    (["rnd/x"], "method 'rnd/x': expected NAME or NAME:key=value"),
    (["viper_std:zero_shot_stats=a/b"], "method 'viper_std:zero_shot_stats=a/b': zero_shot_stats='a/b' cannot "
                                         "be part of a method label"),
    (["rnd:lr=0.1", "rnd:lr=1e-1"], "methods 'rnd:lr=0.1' and 'rnd:lr=1e-1' are the same method 'rnd-lr=0.1'"),
])
def test_bad_method_specs_say_what_is_wrong(specs, message, tmp_path):
    with pytest.raises(ValueError) as e:
        expand("smoke", methods=specs, results=tmp_path, precision="fp32")
    assert message in str(e.value)


def test_labels_are_folder_names_and_one_per_setting():
    assert method_label("rnd", {"lr": 1e-4, "bonus_scale": 2, "on": True}) == "rnd-bonus_scale=2-lr=0.0001-on=true"
    assert parse_method("viper_std:zero_shot_stats=seen") == ("viper_std", {"zero_shot_stats": "seen"})
    for m in (m for s in definitions.SUITES.values() for m in s.methods):
        assert definitions.LABEL.fullmatch(m.label)  # the built-in labels are valid labels too


def test_list_names_the_registered_providers(capsys):
    assert suite_run.main(["--list"]) == 0
    out = capsys.readouterr().out.split("reward providers")[1]
    assert out.split(":\n")[1].split() == rewards.available()
