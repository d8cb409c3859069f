"""Plans without duplicates, and faults of the machine that say what to change, for real.

A value given twice (``--seeds 0 0``) is planned once, with one line saying so: twins would race for one
run directory. A ``MUJOCO_GL`` that cannot render is refused before MuJoCo is imported, in one line; a run
that fails on the machine (a GL context that cannot be made, a full disk) is an environment fault whose
FAILED line says what to fix, grouped under "re-run after fixing the environment". The faults are real:
MuJoCo rendering without a display, torch writing into a full file system (a tiny tmpfs where this user
may mount one, else ``/dev/full``)."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from common.faults import EnvironmentFault, _loads, check_gl, environment_fault
from common.io import atomic_torch_save
from common.runs import FRAME, TRAIN_FILE
from suites import run as suite_run
from suites.plan import duplicate_notes, expand

ROOT = Path(__file__).parents[1]
RERUN = "then re-run to resume"
#: a display no X server listens on (a stale DISPLAY, an ssh session without forwarding)
NO_X = next(f":{n}" for n in range(99, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists())


def _python(args: list[str], unset: tuple[str, ...] = (), **env: str) -> subprocess.CompletedProcess:
    """``python <args>`` from the repository, with ``env`` set and ``unset`` removed from this environment."""
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    for name in unset:
        full.pop(name, None)
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, env=full, timeout=300)


def _smoke(results: Path, *extra: str) -> list[str]:
    return [
        "-m",
        "suites.run",
        "--suite",
        "smoke",
        "--profile",
        "smoke",
        "--methods",
        "sparse",
        "--seeds",
        "0",
        "--frames",
        "400",
        "--threads",
        "1",
        "--no-figures",
        "--results",
        str(results),
        *extra,
    ]


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs: a disk that fills for real within a run's first replay episode. Mounting needs root
    (a sandbox, a container); elsewhere the test is skipped."""
    where = tmp_path / "tiny"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    yield where
    subprocess.run(["umount", str(where)], check=True)


# ------------------------------------------------------------------------------------ duplicates
@pytest.mark.parametrize(
    "flags, note, keys",
    [
        (
            dict(methods=["sparse", "sparse"]),
            "--methods sparse sparse: duplicates dropped, running sparse",
            ["sparse/reach/seed_0"],
        ),
        (
            dict(methods=["rnd:lr=0.1", "rnd:lr=1e-1"]),  # one label, rnd-lr=0.1: one method
            "--methods rnd:lr=0.1 rnd:lr=1e-1: duplicates dropped, running rnd:lr=0.1",
            ["rnd-lr=0.1/reach/seed_0"],
        ),
        (
            dict(methods=["sparse"], tasks=["reach", "reach"]),
            "--tasks reach reach: duplicates dropped, running reach",
            ["sparse/reach/seed_0"],
        ),
        (
            dict(methods=["sparse"], seeds=[1, 0, 1]),
            "--seeds 1 0 1: duplicates dropped, running 1 0",
            ["sparse/reach/seed_1", "sparse/reach/seed_0"],
        ),
    ],
)
def test_a_repeated_value_is_planned_once_with_one_note(flags, note, keys, tmp_path):
    runs = expand("smoke", "smoke", results=tmp_path, precision="fp32", **flags)
    assert [r.key for r in runs] == keys
    assert duplicate_notes("smoke", **flags) == [note]


def test_values_given_once_make_no_note():
    assert duplicate_notes("smoke", methods=["sparse", "rnd"], tasks=["reach"], seeds=[0, 1]) == []
    assert duplicate_notes("smoke") == []


@pytest.mark.slow
def test_a_command_with_every_value_twice_runs_its_one_run_once(tmp_path, capsys):
    results = tmp_path / "results"
    argv = _smoke(results, "--methods", "sparse", "sparse", "--tasks", "reach", "reach", "--seeds", "0", "0")
    assert suite_run.main([*argv[2:], "--jobs", "2"]) == 0  # --jobs 2: twins would run side by side
    out, err = capsys.readouterr()
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert notes == [
        "note: --methods sparse sparse: duplicates dropped, running sparse",
        "note: --tasks reach reach: duplicates dropped, running reach",
        "note: --seeds 0 0: duplicates dropped, running 0",
    ], err
    assert "suite smoke: 1 runs" in out and "BUSY" not in out and "another process" not in err, out + err
    run_dirs = sorted(p.parent.relative_to(results) for p in results.rglob("config.json"))
    assert run_dirs == [Path("smoke/sparse/reach/seed_0")]
    with open(results / run_dirs[0] / TRAIN_FILE) as f:
        frames = [int(row[FRAME]) for row in csv.DictReader(f)]
    assert frames == sorted(set(frames)) and frames[-1] == 400  # one training, no rows written twice


# ------------------------------------------------------------------------------------ MUJOCO_GL up front
@pytest.mark.parametrize(
    "command",
    [
        ["suites.run", "--list"],
        ["tasks.collect", "--help"],
        ["rewards.models.pretrain", "--help"],
        ["experiments.reward_quality", "--help"],
    ],
)
def test_an_unknown_mujoco_gl_is_one_line_naming_the_valid_ones(command):
    r = _python(["-m", *command], MUJOCO_GL="nonsense")
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("error: MUJOCO_GL=nonsense is not a GL back end the suite renders with; "), line
    assert "valid: egl, osmesa, glfw (needs a display); off screen, use " in line
    assert "MUJOCO_GL=egl (Debian: libegl1 " in line and "MUJOCO_GL=osmesa (Debian: libosmesa6)" in line


def test_glfw_without_a_display_is_refused_before_any_run(tmp_path):
    r = _python(_smoke(tmp_path / "results"), unset=("DISPLAY",), MUJOCO_GL="glfw")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    [line] = r.stderr.strip().splitlines()
    assert line.startswith("error: MUJOCO_GL=glfw needs an X display and DISPLAY is not set; without one, use "), line
    assert "MUJOCO_GL=osmesa (Debian: libosmesa6)" in line
    assert not (tmp_path / "results").exists()


def test_check_gl_settles_what_mujoco_and_pyopengl_read():
    env = {}
    assert check_gl(env) == "egl" and env == {"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl"}
    env = {"MUJOCO_GL": " OSMesa "}  # read as MuJoCo reads it
    assert check_gl(env) == "osmesa" and env["PYOPENGL_PLATFORM"] == "osmesa"
    assert check_gl({"MUJOCO_GL": "glfw", "DISPLAY": ":0"}) == "glfw"
    assert _loads(("libEGL.so.1",)) and not _loads(("libvrb_no_such_library.so.0",))  # a missing library is seen
    with pytest.raises(EnvironmentFault) as e:
        check_gl({"MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "osmesa"})  # MuJoCo's import would fail on it
    assert str(e.value) == (
        "PYOPENGL_PLATFORM=osmesa disagrees with MUJOCO_GL=egl (PyOpenGL and MuJoCo must use one platform); "
        "unset PYOPENGL_PLATFORM or set it to egl"
    )


# ------------------------------------------------------------------------------------ faults of a run
def _full_disk_error(where: str, tmp_path: Path) -> tuple[BaseException, Path]:
    """What a checkpoint write raises on a full disk, really raised: torch writing into a filled tmpfs through
    ``common.io`` (as a run does), or into ``/dev/full``; and the folder the run writes to."""
    try:
        if where == "/dev/full":
            with open("/dev/full", "wb", buffering=0) as f:
                torch.save({"w": torch.zeros(200_000)}, f)
        else:
            atomic_torch_save(Path(where) / "checkpoint.pt", {"w": torch.zeros(200_000)})
    except Exception as e:
        return e, tmp_path if where == "/dev/full" else Path(where)
    raise AssertionError(f"writing into {where} did not fail")


@pytest.mark.parametrize("target", ["tmpfs", "/dev/full"])
def test_a_full_disk_is_an_environment_fault_naming_the_device(target, tmp_path, request):
    where = str(request.getfixturevalue("tiny_fs")) if target == "tmpfs" else target
    e, run_dir = _full_disk_error(where, tmp_path)
    fault = environment_fault(e, run_dir)
    assert fault is not None, repr(e)
    mount = run_dir if target == "tmpfs" else Path(os.path.realpath(run_dir))
    while not os.path.ismount(mount):
        mount = mount.parent
    assert str(fault).startswith(f"no space left on {mount} (") and str(fault).endswith(
        f"MB free); free space, {RERUN}"
    ), fault
    assert suite_run._failure_kind(fault) == "environment"


def test_torchs_write_error_without_an_errno_is_judged_by_the_disk(tmp_path):
    """torch's own file writer (a path, not a file object) reports no errno, only "unexpected pos"."""
    with pytest.raises(RuntimeError) as e:
        torch.save({"w": torch.zeros(200_000)}, "/dev/full")
    fault = environment_fault(e.value, tmp_path)
    assert fault is not None and "unexpected pos" in str(fault), e.value
    assert str(fault).startswith("writing a file failed (") and str(fault).endswith(
        f"a full disk or quota is the usual cause; free space, {RERUN}"
    ), fault


def test_a_gl_context_that_cannot_be_made_is_an_environment_fault():
    """MuJoCo rendering with glfw and no display, in a process of its own (``tasks`` would refuse it up
    front, so this imports MuJoCo itself), then a MuJoCo error that is not GL's: only the first is a fault."""
    code = (
        "import mujoco\n"
        "from common.faults import environment_fault\n"
        "model = mujoco.MjModel.from_xml_string('<mujoco/>')\n"
        "try:\n"
        "    mujoco.Renderer(model, 8, 8)\n"
        "except Exception as e:\n"
        "    print(environment_fault(e, '.'))\n"
        "try:\n"
        "    mujoco.MjModel.from_xml_string('<mujoco><bad/></mujoco>')\n"
        "except Exception as e:\n"
        "    print(environment_fault(e, '.'))\n"
    )
    r = _python(["-c", code], unset=("DISPLAY",), MUJOCO_GL="glfw")
    assert r.returncode == 0, r.stderr
    gl, other = r.stdout.strip().splitlines()
    assert gl.startswith("rendering failed (MUJOCO_GL=glfw): FatalError: an OpenGL platform library "), gl
    assert "install or choose another back end: MUJOCO_GL=egl (Debian: libegl1 " in gl and gl.endswith(RERUN)
    assert other == "None"


def test_a_bug_or_a_config_error_is_not_an_environment_fault(tmp_path):
    for fail in (lambda: (tmp_path / "missing").read_text(), lambda: int("x"), lambda: {}["k"]):
        with pytest.raises(Exception) as e:
            fail()
        assert environment_fault(e.value, tmp_path) is None
        assert suite_run._failure_kind(e.value) == "config"


# ------------------------------------------------------------------------------------ whole runs
@pytest.mark.slow
def test_a_run_on_a_full_disk_says_so_and_resumes_once_there_is_room(tiny_fs, capsys):
    results = tiny_fs / "results"
    assert suite_run.main(_smoke(results)[2:]) == 1
    out, err = capsys.readouterr()
    [failed] = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert failed.startswith(f"FAILED sparse/reach/seed_0: no space left on {tiny_fs} ("), failed
    assert f"MB free); free space, {RERUN}" in failed
    assert "1 run(s) failed on this machine's setup: sparse/reach/seed_0; re-run after fixing the environment" in err, (
        err
    )
    assert "a re-run will not fix this" not in err

    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_fs)], check=True)  # the user frees space
    assert suite_run.main(_smoke(results)[2:]) == 0
    assert (results / "smoke/sparse/reach/seed_0/done.json").is_file()


@pytest.mark.slow
def test_a_run_that_cannot_render_says_which_back_ends_to_use(tmp_path):
    r = _python(_smoke(tmp_path / "results"), MUJOCO_GL="glfw", DISPLAY=NO_X)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    [failed] = [line for line in r.stdout.splitlines() if line.startswith("FAILED")]
    assert failed.startswith("FAILED sparse/reach/seed_0: rendering failed (MUJOCO_GL=glfw): FatalError: "), failed
    assert f"{RERUN} (traceback: " in failed
    assert "1 run(s) failed on this machine's setup: sparse/reach/seed_0; re-run after fixing the environment" in (
        r.stderr
    )
