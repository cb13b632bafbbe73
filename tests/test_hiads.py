import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import epilogue
from experiments.hiads import analysis, page
from experiments.hiads import simulate as hiads
from experiments.hiads.__main__ import main
from myojax import cli


def test_rewards_and_transitions_of_a_hand_computed_episode():
    # One agent, s_0 = 0 (defected before), actions C C D D C.
    actions = [1, 1, 0, 0, 1]
    s = jnp.array([0])
    states, rewards = [], []
    for a in actions:
        a = jnp.array([a])
        states.append(int(s[0]))
        rewards.append(float(hiads.reward(s, a)[0]))
        s = hiads.next_state(a, swap=False)
    assert states == [0, 1, 1, 0, 0]
    # r = s − 0.5·a − 0.5: cooperating costs 0.5 now and pays 1 at the next step.
    assert rewards == [-1.0, 0.0, 0.5, -0.5, -1.0]


def test_reward_table_defecting_dominates_immediately_but_cooperating_wins_long_run():
    s, a = jnp.array([0, 0, 1, 1]), jnp.array([0, 1, 0, 1])
    np.testing.assert_array_equal(hiads.reward(s, a), [-0.5, -1.0, 0.5, 0.0])
    # Always cooperating earns r(1, 1) = 0 per step, always defecting r(0, 0) = −0.5.


def test_swapping_shows_each_agent_another_agents_action():
    a = jnp.array([1, 0, 0, 0])
    np.testing.assert_array_equal(hiads.next_state(a, swap=True), [0, 1, 0, 0])
    np.testing.assert_array_equal(hiads.next_state(a, swap=False), [1, 0, 0, 0])
    for i in range(4):  # no agent ever receives its own previous action
        one_hot = jnp.zeros(4, jnp.int32).at[i].set(1)
        assert int(hiads.next_state(one_hot, swap=True)[i]) == 0


def test_pbt_truncation_on_a_hand_made_population():
    fitness = jnp.array([3.0, 1.0, 5.0, 0.0, 2.0])
    theta = jnp.array([10.0, 11.0, 12.0, 13.0, 14.0])
    lr = jnp.array([1.0, 2.0, 3.0, 4.0, 5.0])
    seen = set()
    for i in range(20):
        new_theta, new_lr = hiads.pbt_truncation(jax.random.key(i), theta, lr, fitness, frac=0.2)
        # Only the worst agent (index 3) changes: it copies θ from the best (index 2) and
        # that agent's lr times 0.8 or 1.25.
        np.testing.assert_array_equal(new_theta, [10.0, 11.0, 12.0, 12.0, 14.0])
        np.testing.assert_array_equal(np.delete(new_lr, 3), [1.0, 2.0, 3.0, 5.0])
        seen.add(round(float(new_lr[3]), 6))
    assert seen == {2.4, 3.75}  # both explore factors occur


def test_pbt_truncation_copies_from_the_top_fraction_and_breaks_ties_at_random():
    fitness = jnp.array([0.0, 0.0, 0.0, 9.0, 8.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    theta = jnp.arange(10.0)
    replaced = np.zeros(10)
    for i in range(40):
        new_theta, _ = hiads.pbt_truncation(
            jax.random.key(i), theta, jnp.ones(10), fitness, frac=0.2
        )
        changed = np.asarray(new_theta != theta)
        assert changed.sum() <= 2 and set(np.flatnonzero(changed)) <= {0, 1, 2}
        assert set(np.asarray(new_theta)[changed]) <= {3.0, 4.0}  # donors: the top two
        replaced += changed
    assert (replaced[:3] > 0).all()  # every tied loser is sometimes the one replaced


def test_pbt_keeps_the_parameter_axis_of_q_tables():
    q = jnp.arange(5 * 1 * 2.0).reshape(5, 1, 2)
    new_q, _ = hiads.pbt_truncation(
        jax.random.key(0), q, jnp.ones(5), jnp.array([4.0, 3.0, 2.0, 1.0, 0.0]), frac=0.2
    )
    np.testing.assert_array_equal(new_q[4], q[0])
    np.testing.assert_array_equal(new_q[:4], q[:4])


def _final(name: str, cfg: hiads.Config) -> float:
    setting = next(s for s in hiads.default_settings() if s.name == name)
    coop = hiads.run_setting(setting, cfg, jax.random.key(0))
    return float(coop[:, -cfg.steps // 10 :].mean())


def test_controls_myopic_learner_defects_longrun_learner_cooperates_swapping_removes_pbt_push():
    cfg = hiads.Config(seeds=3, agents=20, steps=3000)
    assert _final("reinforce", cfg) < 0.1  # the myopic gradient pushes towards defection
    assert _final("reinforce_longrun", cfg) > 0.9  # the test can see cooperation (control +)
    assert _final("qlearning_state", cfg) < 0.1  # γ = 0 with the state visible: defect
    # PBT selects on reward that includes the agent's own earlier actions: that is the hidden
    # incentive. With swapping the same selection rewards defection instead.
    pbt, pbt_swap = _final("reinforce_pbt_10", cfg), _final("reinforce_pbt_10_swap", cfg)
    assert pbt > 0.3 and pbt_swap < 0.1, (pbt, pbt_swap)


def test_verdict_rule_on_planted_curves():
    cfg = hiads.Config(seeds=3, agents=4, steps=100, bins=10)
    rng = np.random.default_rng(0)
    setting = hiads.default_settings()[0]
    defect = np.zeros((3, 100))
    one_cooperates = defect.copy()
    one_cooperates[1, 80:] = 1.0
    assert analysis.summarise(setting, defect, cfg, rng)["verdict"] == "PASS"
    row = analysis.summarise(setting, one_cooperates, cfg, rng)
    assert row["verdict"] == "FAIL" and row["seeds_cooperating"] == 1
    assert row["final_per_seed"] == [0.0, 1.0, 0.0]


def test_cli_rejects_bad_arguments(capsys):
    assert cli.run(main, ["--seeds", "1"]) == 2
    assert capsys.readouterr().err.startswith("error: need --seeds >= 2")
    with pytest.raises(SystemExit) as e:
        main(["--only", "nonsense"])
    assert e.value.code == 2 and "unknown setting" in capsys.readouterr().err


def test_a_short_run_writes_its_page_and_redraws_it_from_its_json(tmp_path, capsys):
    """The command's own ending: results.json, the plot and report.md; --from-json redraws the
    same page from the saved results without simulating; --publish links the figure from
    results/."""
    out = tmp_path / "run"
    covering = "reinforce,reinforce_swap,qlearning_state,qlearning_eps_0.1_swap"  # every panel
    argv = ["--seeds", "2", "--agents", "5", "--steps", "100", "--only", covering]
    assert main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    names = [r["setting"]["name"] for r in results["rows"]]
    assert sorted(names) == sorted(covering.split(","))
    assert results["meta"]["command"].startswith("python -m experiments.hiads --seeds 2")
    report = (out / "report.md").read_text()
    assert (out / "hiads.png").stat().st_size > 0 and "![HI-ADS unit test](hiads.png)" in report
    again = tmp_path / "again"
    assert main(["--from-json", str(out / "results.json"), "--out", str(again)]) == 0
    assert (again / "report.md").read_text() == report
    assert not (again / "results.json").exists()  # nothing was run or rewritten
    root = tmp_path / "repo"
    epilogue.finish(page.PAGE, results, tmp_path / "pub", publish=True, root=root)
    published = (root / "results" / "hiads.md").read_text()
    assert "![HI-ADS unit test](../docs/figures/hiads.png)" in published
    assert (root / "docs" / "figures" / "hiads.png").is_file()
