"""Exploration schedule per profile (docs/protocol.md#agent-drq-v2)."""

from agents import DrQV2Config
from suites.plan import expand


def _agent(run) -> DrQV2Config:
    return DrQV2Config.from_dict(run.config.agent)


def test_quick_profile_std_reaches_final_at_the_last_agent_step(tmp_path):
    for run in expand("metaworld7", "quick", methods=["sparse"], results=tmp_path):
        cfg, c = _agent(run), run.config
        last_step = c.frames // c.action_repeat
        assert cfg.std_duration == last_step
        assert abs(cfg.stddev(last_step) - cfg.std_final) < 1e-9
        assert cfg.stddev(last_step // 2) < 0.6  # half way: half way down, not ~1.0 as with 3e6


def test_frames_override_rescales_and_assembly_counts_its_action_repeat(tmp_path):
    (run,) = expand(
        "metaworld7", "quick", methods=["sparse"], tasks=["assembly"], seeds=[0], frames=9000, results=tmp_path
    )
    assert _agent(run).std_duration == 9000 // 3


def test_paper_profile_keeps_the_release_schedule(tmp_path):
    run = expand("metaworld7", "paper", methods=["sparse"], tasks=["reach"], seeds=[0], results=tmp_path)[0]
    assert _agent(run).std_duration == 3e6
    assert _agent(run).stddev(0) == 1.0
