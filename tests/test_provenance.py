"""myojax.provenance: the machine and load record printed beside every published figure."""

from myojax.provenance import (
    command_line,
    environment,
    idle,
    load_summary,
    run_record,
    write_section,
)


def test_environment_records_load_and_cpus():
    env = environment()
    assert env["cpu_count"] >= 1
    assert len(env["load_avg_1_5_15"]) == 3
    assert env["backend"] == "cpu"


def test_load_summary_calls_a_machine_idle_only_when_load_fits_its_cpus():
    quiet = {"load_avg_1_5_15": (1.2, 1.0, 0.8), "cpu_count": 2, "time": "t"}
    busy = {"load_avg_1_5_15": (31.0, 28.0, 20.0), "cpu_count": 2, "time": "t"}
    assert idle(quiet) is True and idle(busy) is False and idle({}) is None
    assert idle({**quiet, "load_avg_1_5_15": (2.0, 0.0, 0.0)}) is True  # load equal to the CPUs
    assert "otherwise idle" in load_summary(quiet)
    assert "1.2 / 1.0 / 0.8 at the end on 2 CPUs" in load_summary(quiet)
    assert "inflated" in load_summary(busy) and "idle" not in load_summary(busy)
    # judged by the load when the job started: the end load counts its own threads
    assert "otherwise idle" in load_summary(busy, start=quiet)
    both = load_summary(busy, quiet)
    assert "1.2 / 1.0 / 0.8 at the start, 31.0 / 28.0 / 20.0 at the end" in both
    assert load_summary({}) == "load not recorded"


def test_run_record_reproduces_the_command():
    rec = run_record("python -m x", ["--out", "a b"], 1.5, (0.1, 0.2, 0.3))
    assert rec["command"] == command_line("python -m x", ["--out", "a b"])
    assert rec["command"].endswith("'a b'")
    assert rec["load_before"] == [0.1, 0.2, 0.3] and len(rec["load_after"]) == 3


def test_write_section_replaces_its_own_section_and_keeps_the_rest(tmp_path):
    path = tmp_path / "r.md"
    path.write_text("# Title\n\nhand-written\n")
    write_section(path, "a", "first")
    write_section(path, "b", "other")
    write_section(path, "a", "second")
    text = path.read_text()
    assert "hand-written" in text and "other" in text and "second" in text
    assert "first" not in text and text.count("<!-- begin a -->") == 1
