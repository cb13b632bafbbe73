"""The saddle experiment's task views: the copy variants ask for the source token, the attention
measurement reads the source position (exact on a uniform-attention model), and the pre-caching
probe separates a future-useful feature from an unused one only where one is stored."""

from __future__ import annotations

import jax
import numpy as np

from experiments.precaching import facts as facts_page
from experiments.precaching import map as map_page
from experiments.precaching.saddle_tasks import (
    Precache,
    attention,
    facts_view,
    map_view,
    precache_margin,
    score,
)
from myojax.config import ModelConfig
from myojax.model import GPT

MAP = map_page.Settings(seq_len=10, lag=3, d_model=16, n_layers=1, probe_sequences=24)
FACTS = facts_page.FactsSettings(d_model=16, n_layers=1, probe_sequences=24)


def _uniform_model(view, n_layers: int = 1) -> GPT:
    """Zero queries: every attention row is uniform over the positions it sees."""
    cfg = ModelConfig(vocab_size=view.vocab_size, seq_len=view.seq_len, d_model=16,
                      n_layers=n_layers, n_heads=2, zero_init_query=True)  # fmt: skip
    return GPT(cfg, key=jax.random.key(0))


def test_map_copy_variant_targets_the_source_token_and_the_task_its_image():
    view = map_view(MAP, seed=0)
    key = jax.random.key(1)
    copy, task = view.copy_sample(key, 4), view.sample(key, 4)
    x = np.asarray(copy.inputs)
    np.testing.assert_array_equal(np.asarray(task.inputs), x)  # the same inputs
    np.testing.assert_array_equal(np.asarray(copy.targets)[:, 3:], x[:, :-3])  # x_(t-lag) + 1 - 1
    assert not np.array_equal(np.asarray(task.targets)[:, 3:], x[:, :-3])
    np.testing.assert_array_equal(view.answer_positions, np.arange(3, 10))


def test_facts_copy_variant_asks_for_the_queried_entity():
    view = facts_view(FACTS, seed=0)
    batch = view.copy_sample(jax.random.key(2), 8)
    x, y = np.asarray(batch.inputs), np.asarray(batch.targets)
    slot = view.source(batch)
    np.testing.assert_array_equal(y[:, -1], x[np.arange(8), slot])  # the entity's own token
    assert np.all(y[:, :-1] == 0)


def test_attention_on_the_source_is_exact_for_uniform_attention():
    view = map_view(MAP, seed=0)
    got = attention(view, _uniform_model(view), jax.random.key(3), 8)
    expected = np.mean(1.0 / (view.answer_positions + 1))  # 1/(t+1) at position t
    assert np.allclose(got, expected, atol=1e-5)
    fview = facts_view(FACTS, seed=0)
    got = attention(fview, _uniform_model(fview, 2), jax.random.key(4), 8)
    assert len(got) == 2 and np.allclose(got, 1.0 / fview.seq_len, atol=1e-5)


def test_an_untrained_model_scores_at_chance_and_stores_nothing():
    view = map_view(MAP, seed=0)
    model = _uniform_model(view)
    s = score(view, model, jax.random.key(5), 64)
    assert s.accuracy < 0.5 and s.loss > 1.0
    p = view.precache(model, jax.random.key(6))
    assert len(p.future) == 2 and abs(precache_margin(p)) < 0.15  # both arbitrary functions


def test_precache_margin_is_the_largest_gap_over_sites():
    p = Precache(future=(0.5, 0.9, 0.6), unused=(0.5, 0.4, 0.5), chance=0.25)
    assert np.isclose(precache_margin(p), 0.5)
    assert precache_margin(Precache((0.3, 0.3), (0.5, 0.4), 0.25)) < 0  # negative control
