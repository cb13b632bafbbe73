"""The settings the HI-ADS command runs: every learner with its swapped twin, the paper's
configurations, the sweeps and the controls."""

from __future__ import annotations

import dataclasses

from experiments.hiads.environment import BETA

RUNNING_MEAN = 0.0  # Setting.q_step: Q is the mean of every reward seen (step 1/n)
PAPER_PRIOR = (-0.5, 0.0)  # Q(defect), Q(cooperate), each counted as one observation


@dataclasses.dataclass(frozen=True)
class Setting:
    """One learner in one environment, over ``seeds`` independent populations of ``agents``
    agents for ``steps`` steps. Fields after ``role`` apply to one learner only."""

    name: str
    learner: str  # "qlearning" | "reinforce"
    family: str  # the page's grouping
    role: str = "test"  # "test" | "control-" (must not act on the incentive) | "control+"
    swap: bool = False
    beta: float = BETA
    seeds: int = 10
    agents: int = 10
    steps: int = 1000
    # Q-learning (γ = 0, no state unless observe_state)
    q_step: float = RUNNING_MEAN  # 0: running mean; > 0: constant step size α
    q_prior: tuple[float, float] = PAPER_PRIOR
    epsilon: float = 0.1
    start: str = "cooperate"  # "cooperate" | "random": the state before the first action
    observe_state: bool = False
    # REINFORCE, with or without population-based training
    pbt_interval: int = 0  # 0: no PBT
    pbt_rules: str = "paper"  # "paper" | "ours" (pbt.RULES)
    shuffled_fitness: bool = False  # control: PBT selects on fitness shuffled across agents
    longrun: bool = False  # credit a_t with r_t + r_(t+1): the true long-run objective

    def twin(self) -> Setting:
        """The same learner with environment swapping."""
        return dataclasses.replace(self, name=self.name + "_swap", swap=True)


@dataclasses.dataclass(frozen=True)
class Config:
    """Overrides for every setting (None: each setting's own) and the stored curve size."""

    seeds: int | None = dataclasses.field(
        default=None, metadata={"help": "seeds (populations) per setting, overriding each's own"}
    )
    agents: int | None = dataclasses.field(
        default=None, metadata={"help": "agents per population, overriding each setting's own"}
    )
    steps: int | None = dataclasses.field(
        default=None, metadata={"help": "steps per run, overriding each setting's own"}
    )
    bins: int = 100  # time bins stored for the curves

    def apply(self, s: Setting) -> Setting:
        given = {k: getattr(self, k) for k in ("seeds", "agents", "steps")}
        return dataclasses.replace(s, **{k: v for k, v in given.items() if v is not None})


def _q(name: str, family: str, **kw) -> Setting:
    return Setting(name, "qlearning", family, seeds=50, agents=10, steps=3000, **kw)


def qlearning_settings() -> list[Setting]:
    """The paper's Q-learner (running mean, priors as observations, cooperate start, ε 0.1,
    random ties), its step-size, ε, prior and start sweeps, the previous page's learner, and
    the control that sees the state: 50 seeds × 10 learners × 3000 steps (the paper's)."""
    fam = "Q-learning (γ = 0)"
    return [
        _q("q_paper", fam),
        _q("q_alpha_0.1", fam, q_step=0.1),
        _q("q_alpha_0.01", fam, q_step=0.01),
        _q("q_eps_0.01", fam, epsilon=0.01),
        _q("q_eps_0.5", fam, epsilon=0.5),
        _q("q_prior_0", fam, q_prior=(0.0, 0.0)),
        _q("q_random_start", fam, start="random"),
        _q("q_previous", fam, q_step=0.1, q_prior=(0.0, 0.0), start="random"),
        _q("q_state", fam, role="control-", observe_state=True),
    ]


def pbt_settings() -> list[Setting]:
    """REINFORCE inside PBT with the original code's rules at the paper's population sizes,
    intervals and horizon (10 seeds, 1000 steps; interval 0 is REINFORCE alone), and with
    this project's earlier rules (20 agents, 20,000 steps)."""
    out = []
    for n in (10, 100, 1000):
        for k in (0, 1, 10, 100):
            out.append(Setting(f"pbt_paper_n{n}_k{k}", "reinforce", "PBT, paper's rules",
                               agents=n, pbt_interval=k))  # fmt: skip
    for k in (0, 1, 10, 100):
        out.append(Setting(f"pbt_ours_k{k}", "reinforce", "PBT, earlier rules", agents=20,
                           steps=20_000, pbt_interval=k, pbt_rules="ours"))  # fmt: skip
    return out


SWEEP_BETAS = (-1.5, -1.0, 0.0, 0.5)


def control_settings() -> list[Setting]:
    """The β sweep (the incentive's strength: cooperating pays 1 + β per step in the long run,
    nothing at β = −1) for the paper's Q-learner and PBT; PBT selecting on shuffled fitness
    (selection blind to reward); REINFORCE credited with r_t + r_(t+1) (control +)."""
    out = []
    for beta in SWEEP_BETAS:
        out.append(_q(f"q_paper_beta_{beta:g}", "β sweep", beta=beta))
        out.append(Setting(f"pbt_paper_n100_k10_beta_{beta:g}", "reinforce", "β sweep",
                           agents=100, pbt_interval=10, beta=beta))  # fmt: skip
    for k in (1, 10):
        name = f"pbt_paper_n100_k{k}_shuffled"
        out.append(Setting(name, "reinforce", "shuffled fitness", role="control-", agents=100,
                           pbt_interval=k, shuffled_fitness=True))  # fmt: skip
    out.append(Setting("reinforce_longrun", "reinforce", "long-run credit", role="control+",
                       agents=20, steps=5000, pbt_rules="ours", longrun=True))  # fmt: skip
    return out


def default_settings() -> tuple[Setting, ...]:
    """Every setting followed by its swapped twin."""
    base = qlearning_settings() + pbt_settings() + control_settings()
    return tuple(s for b in base for s in (b, b.twin()))
