"""myojax.progress: log lines without a terminal, silence on other processes, absolute
positions (a resumed run starts mid-bar)."""

from __future__ import annotations

from myojax.progress import Progress


def test_lines_without_a_bar(capsys):
    p = Progress(10, enabled=False)
    p.update(3, line="step 3")
    p.update(4)  # no line given: nothing printed
    p.write("note")
    p.close()
    assert capsys.readouterr().out == "step 3\nnote\n"


def test_quiet_prints_nothing(capsys):
    p = Progress(10, enabled=True, quiet=True)
    p.update(5, line="step 5")
    p.write("note")
    p.close()
    assert capsys.readouterr() == ("", "")


def test_bar_positions_are_absolute(capsys):
    p = Progress(10, initial=4, enabled=True, desc="train")
    p.update(7, postfix={"loss": "1.0"})
    assert p.bar.n == 7
    p.update(10)
    assert p.bar.n == 10
    p.close()
    assert "train" in capsys.readouterr().err
