"""``--agent KEY=VALUE``: one DrQ-v2 setting changed over the profile's (a pilot such as the release's batch 256),
recorded in each run's config so such runs never mix with the profile's own."""

import pytest

from suites import run as suite_run
from suites.plan import expand
from suites.train import ConfigMismatch, check_config


def test_an_agent_override_reaches_every_run_config_over_the_profile(tmp_path):
    plain = expand("metaworld7", "quick", methods=["dense"], tasks=["door-close"], seeds=[1, 2], results=tmp_path)
    runs = expand(
        "metaworld7",
        "quick",
        methods=["dense"],
        tasks=["door-close"],
        seeds=[1, 2],
        results=tmp_path,
        agent=suite_run.agent_settings(["batch_size=256", "std_final=0.2"]),
    )
    assert [r.config.agent["batch_size"] for r in plain] == [64, 64]  # the quick profile's
    assert [r.config.agent["batch_size"] for r in runs] == [256, 256]
    assert {r.config.agent["std_final"] for r in runs} == {0.2}
    # every other setting is the profile's
    changed = {k for k in runs[0].config.agent if runs[0].config.agent[k] != plain[0].config.agent[k]}
    assert changed == {"batch_size", "std_final"}
    # a relaunch of the profile's run into the folder of the override's is refused, naming the setting
    runs[0].config.write(runs[0].run_dir)
    with pytest.raises(ConfigMismatch, match=r"agent\.batch_size"):
        check_config(plain[0].config, runs[0].run_dir)


@pytest.mark.parametrize(
    "items, message",
    [
        (["batch_size"], "--agent wants KEY=VALUE, got 'batch_size'"),
        (["seed=3"], "--agent seed: set it with --seeds"),
        (["precision=fp32"], "--agent precision: set it with --precision"),
    ],
)
def test_malformed_or_foreign_agent_items_are_refused(items, message):
    with pytest.raises(ValueError, match=message):
        suite_run.agent_settings(items)


@pytest.mark.parametrize(
    "agent, message",
    [
        ({"batch_sise": 256}, r"unknown DrQV2Config keys \['batch_sise'\]; valid keys: .*'batch_size'"),
        ({"batch_size": "big"}, r"agent setting batch_size='big': expected int \(default 256\)"),
        ({"lr": True}, r"agent setting lr=True: expected float"),
    ],
)
def test_an_unknown_setting_or_a_value_of_another_kind_is_refused_before_any_run(tmp_path, agent, message):
    with pytest.raises(ValueError, match=message):
        expand("metaworld7", "quick", methods=["dense"], tasks=["door-close"], results=tmp_path, agent=agent)


def test_the_command_line_refuses_a_bad_agent_item_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        suite_run.main(["--suite", "metaworld7", "--agent", "seed=3", "--results", str(tmp_path), "--no-figures"])
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().endswith("error: --agent seed: set it with --seeds")
