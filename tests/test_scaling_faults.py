"""Study-level faults (issue 26), like tests/test_faults.py for runs: a study interrupted or
damaged at one point ends, after a rerun, with the outputs of an uninterrupted study (or one
clear refusal). The trainer is replaced by the simulated study of ``tests.scaling_synthetic``
so these run in seconds; the real-trainer variants are marked ``slow``."""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from experiments.scaling import execute, findings, plots, protocol, publishing, records, study
from tests import scaling_synthetic as syn

SMOKE = protocol.STUDY_PRESETS["smoke"]


def _run(monkeypatch, out: Path, runs, *, finished: bool = True, **options):
    """``study.run`` over ``runs`` (the trainer's work already done) into ``out``."""
    monkeypatch.setattr(execute, "run_study", lambda *a, **k: (list(runs), finished))
    opts = study.Options(out, "shakespeare", progress=False, **options)
    return study.run(syn.PRESET, syn.MODES, opts, "python -m experiments.scaling")


def _killed(*a, **k):
    raise SystemExit(137)  # what a kill -9 leaves: the files written so far, nothing after


def test_kill_between_results_and_report_rewrites_the_report(tmp_path, monkeypatch):
    """Issue 26 (1): killed after results.json but before report.md, the rerun rewrites the
    report (and plots) instead of saying "nothing new" over an older, partial report."""
    runs = syn.runs()
    out = tmp_path / "study"
    _run(monkeypatch, out, runs[:12], finished=False, train=False)  # a partial report
    partial = (out / "report.md").read_text()
    with monkeypatch.context() as m:
        m.setattr(plots, "plot_all", _killed)
        with pytest.raises(SystemExit):
            _run(monkeypatch, out, runs)
    assert (out / "report.md").read_text() == partial  # the kill left the old page
    outcome = _run(monkeypatch, out, runs)
    assert not outcome.nothing_new
    on_disk = records.read_results(out / "results.json")
    assert on_disk is not None and on_disk.finished and publishing.is_current(on_disk, out)
    assert (out / "report.md").read_text() != partial
    # Negative control: once whole, a rerun changes nothing.
    assert _run(monkeypatch, out, runs).nothing_new


def _diverged(r: records.RunRecord) -> records.RunRecord:
    return dataclasses.replace(
        r,
        status="diverged",
        error="loss is nan at step 3",
        val_loss=None,
        val_loss_per_sequence=None,
        test_loss=None,
        test_loss_per_sequence=None,
        test_loss_per_position=None,
    )


def test_report_is_written_when_the_largest_size_diverges(tmp_path, monkeypatch):
    """Issue 26 (2): every run of the largest size diverged; the report is still written, and
    the transfer check says it cannot decide."""
    largest = syn.PRESET.sizes[-1].name
    runs = [
        _diverged(r) if r.size == largest and r.role in ("size", "transfer") else r
        for r in syn.runs()
    ]
    out = tmp_path / "study"
    _run(monkeypatch, out, runs, rerender=True)
    report = (out / "report.md").read_text()
    assert "every re-sweep run" in report and "**not determined**" in report


def test_a_study_refuses_to_mix_data(tmp_path, monkeypatch):
    """Issue 26 (5): runs record what they trained on, by content; resuming (or rerendering)
    a study with other --data is one clear refusal, not a fit over both datasets."""
    from myojax import train
    from myojax.data import prepare

    src = tmp_path / "a.txt"
    src.write_text("to be or not to be " * 200)
    shards = tmp_path / "d"
    prepare.prepare([src], [src], shards, tokenizer="byte", shard_tokens=1000)
    spec = protocol.sweep_specs(SMOKE, ["standard"])[0]
    record = dataclasses.replace(
        records.planned(spec), status="ok", val_loss=2.0, data=execute.data_identity("shakespeare")
    )
    out = tmp_path / "study"
    records.write_run(spec.run_dir(out), record)
    monkeypatch.setattr(train, "run", lambda *a, **k: pytest.fail("trained on mixed data"))
    monkeypatch.setattr(execute, "heldout_windows", lambda p, data: {})
    for train_ in (True, False):  # resume, and --report-only / --rerender
        with pytest.raises(execute.StudyMixError, match="never mixes data"):
            syn.smoke_pass(out, str(shards), train=train_)
    # Negative control: the same data by content, even from a moved directory, is the same.
    moved = tmp_path / "moved"
    shards.rename(moved)
    assert execute.data_identity(str(moved)).startswith("shards sha256:")
    runs, _ = syn.smoke_pass(out, "shakespeare", write=False, train=False)
    assert runs == [record]


def _full_disk_at(k: int):
    """A ``Path.write_text`` raising ENOSPC at its ``k``-th call (0-based): a disk that fills
    at one particular write."""
    real, calls = Path.write_text, []

    def write_text(path: Path, *a, **kw):
        calls.append(path)
        if len(calls) - 1 == k:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *a, **kw)

    return write_text


README = "# project\n\nintro\n\n<!-- begin {key} -->\nold answer\n<!-- end {key} -->\n\ntail\n"


def _published(root: Path, out: Path) -> dict[str, str]:
    names = ["README.md", "results/scaling-cpu.json", "results/scaling.md"]
    texts = {n: (root / n).read_text() for n in names if (root / n).is_file()}
    texts |= {n: (out / n).read_text() for n in ("results.json", "report.md") if (out / n).exists()}
    return texts


def _consistent(root: Path, out: Path) -> None:
    """Every page renders the JSON beside it, and the README changed only in its section."""
    res = records.read_results(out / "results.json")
    assert res is not None and publishing.is_current(res, out)
    published = records.results_from_json(
        json.loads((root / "results/scaling-cpu.json").read_text())
    )
    own = publishing.page("cpu", companions=root / "results")
    prefix = "../docs/figures/scaling/"
    assert (root / "results/scaling.md").read_text() == own.render(
        records.to_json(published), prefix
    )
    readme = (root / "README.md").read_text()
    assert readme.startswith("# project\n\nintro\n\n") and readme.endswith("\n\ntail\n")
    assert findings.readme_summary(published).strip() in readme


# The write order: results.json, report.md, results/scaling-cpu.json, results/scaling.md,
# README.md. The default suite fills the disk at the README (the last); the others are slow.
WRITES = [pytest.param(k, marks=pytest.mark.slow) for k in range(4)] + [4]


@pytest.mark.parametrize("k", WRITES)
def test_full_disk_at_each_write_leaves_whole_files_and_a_rerun_recovers(k, tmp_path, monkeypatch):
    """Issue 26 (3, 6): the disk fills at the k-th text file a publishing study writes
    (results.json, report.md, results/*.json, results/*.md, README.md): every file on disk is
    whole (its old or its new text, never a cut one), the study ends in one error, and the rerun
    leaves every page consistent with its JSON."""
    runs = syn.runs()
    root = tmp_path / "repo"
    root.mkdir()
    (root / "README.md").write_text(README.format(key=publishing.README_KEY))
    monkeypatch.chdir(root)
    out = tmp_path / "study"
    _run(monkeypatch, out, runs[:12], finished=False, train=False, publish=True)
    before = _published(root, out)
    with monkeypatch.context() as m:
        m.setattr(Path, "write_text", _full_disk_at(k))
        with pytest.raises(OSError, match="No space left"):
            _run(monkeypatch, out, runs, publish=True)
    faulted = _published(root, out)
    assert not list(out.glob(".*.tmp")) and not list((root / "results").glob(".*.tmp"))
    _run(monkeypatch, out, runs, publish=True)
    after = _published(root, out)
    for name, text in faulted.items():  # whole: the old page or the new, never a cut one
        if name.endswith(".json"):  # its timings differ from the rerun's: whole means parsed
            assert isinstance(json.loads(text), dict), name
        else:
            assert text in (before.get(name), after[name]), name
    _consistent(root, out)


def test_a_full_disk_during_training_is_one_line(tmp_path, monkeypatch, capsys, caplog):
    """Issue 26 (3): orbax logs every failure of its background save threads (with a traceback)
    before the main thread re-raises it; the study drops those copies as the trainer's command
    does, so a full disk is the one `error:` line."""
    from experiments.scaling.__main__ import main
    from myojax import cli

    def disk_fills(*a, **k):
        orbax_thread = logging.LogRecord(
            "absl",
            logging.ERROR,
            "/site-packages/orbax/checkpoint/async.py",
            1,
            "background save failed",
            None,
            None,
        )
        logging.getLogger("absl").handle(orbax_thread)
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ckpt"))

    monkeypatch.setattr(execute, "run_study", disk_fills)
    argv = ["--preset", "smoke", "--out", str(tmp_path / "s"), "--progress", "false"]
    assert cli.run(main, argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: no space left on device"), err
    assert not [r for r in caplog.records if "orbax" in r.pathname]


# --- kill -9 and SIGTERM at each phase of a study process ---------------------------------
# ``tests.scaling_fault_driver`` runs the cpu study with a fake trainer (seconds, not minutes);
# a fault then a rerun must leave what an uninterrupted study leaves. The default suite runs
# one (kill -9 while the report is written); all of them:
#     python -m pytest -m slow tests/test_scaling_faults.py

PHASES = [
    ("training", "KILL", 3),
    ("training", "TERM", 3),
    ("between", "KILL", 5),
    ("between", "TERM", 5),
    ("analysis", "KILL", 1),
    ("analysis", "TERM", 1),
    ("plotting", "KILL", 1),
    ("plotting", "TERM", 1),
    ("report", "KILL", 1),
    ("report", "TERM", 1),
    ("publish", "KILL", 1),
    ("publish", "TERM", 1),
]
DEFAULT_PHASES = {("report", "KILL", 1)}
STUDY_README = README.format(key=publishing.README_KEY)


def _study_process(root: Path, out: Path, fault: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("FAULT", None)
    env |= {"FAULT": fault} if fault else {}
    return subprocess.run(
        [sys.executable, "-m", "tests.scaling_fault_driver", str(out)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


# What differs between two identical studies: timings, loads, the command (its --out).
MEASURED = ("command", "cost", "wall_s", "environment_start", "environment_end", "invocations")


def _outcome(root: Path, out: Path) -> tuple[dict, str]:
    """The study's results without what is measured, and the README section; the pages are
    checked to render exactly these results."""
    local = json.loads((out / "results.json").read_text())
    published = json.loads((root / "results/scaling-cpu.json").read_text())
    for obj in (local, published):
        for key in MEASURED:
            obj.pop(key)
        obj["analysis"].pop("cpu_s", None)
        for run in obj["runs"]:
            for key in ("wall_s", "cpu_s", "load_start", "load_end"):
                run.pop(key, None)
    assert local == published
    res = records.read_results(out / "results.json")
    assert res is not None and publishing.is_current(res, out)
    readme = (root / "README.md").read_text()
    return local, readme[readme.index("<!-- begin") :]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict, str]:
    root = tmp_path_factory.mktemp("reference")
    (root / "README.md").write_text(STUDY_README)
    done = _study_process(root, root / "study", None)
    assert done.returncode == 0, done.stderr
    return _outcome(root, root / "study")


@pytest.mark.parametrize(
    "phase,sig,n",
    [p if p in DEFAULT_PHASES else pytest.param(*p, marks=pytest.mark.slow) for p in PHASES],
)
def test_a_study_killed_at_any_phase_ends_like_an_uninterrupted_one(
    phase, sig, n, uninterrupted, tmp_path
):
    root, out = tmp_path, tmp_path / "study"
    (root / "README.md").write_text(STUDY_README)
    killed = _study_process(root, out, f"{phase}:{sig}:{n}")
    expected = {"KILL": (-9,), "TERM": (-15, 143)}[sig]
    assert killed.returncode in expected, (killed.returncode, killed.stderr[-2000:])
    assert "Traceback" not in killed.stderr
    rerun = _study_process(root, out, None)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert _outcome(root, out) == uninterrupted
