import pytest

from myojax.config import ModelConfig


def test_defaults_are_valid_and_derived_sizes():
    cfg = ModelConfig(d_model=64, n_heads=4)
    assert cfg.ff_dim == 256 and cfg.head_dim == 16
    assert ModelConfig(d_model=64, n_heads=4, d_ff=100).ff_dim == 100


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"d_model": 30, "n_heads": 4}, "n_heads"),
        ({"d_model": 0}, "d_model"),
        ({"n_layers": -1}, "n_layers"),
        ({"vocab_size": 2.5}, "vocab_size"),
        ({"seq_len": True}, "seq_len"),
        ({"d_ff": 0}, "d_ff"),
        ({"gradient_mode": "myopc"}, "gradient_mode"),
        ({"param_dtype": "float16"}, "param_dtype"),
        ({"compute_dtype": "int8"}, "compute_dtype"),
        ({"tie_embeddings": "yes"}, "tie_embeddings"),
        ({"remat": "some"}, "remat"),
        ({"attention_impl": "flash"}, "attention_impl"),
    ],
)
def test_invalid_values_name_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"ModelConfig\.{field}"):
        ModelConfig(**changes)


def test_frozen_and_round_trips_through_dict():
    cfg = ModelConfig(gradient_mode="myopic")
    with pytest.raises(AttributeError):
        cfg.d_model = 3  # type: ignore[misc]
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="no field"):
        ModelConfig.from_dict({**cfg.to_dict(), "dmodel": 3})


def test_a_saved_config_without_attention_impl_reads_as_the_reference_that_trained_it():
    saved = ModelConfig(gradient_mode="myopic").to_dict()
    assert saved["attention_impl"] == "fast"  # the default, recorded by every new run
    del saved["attention_impl"]
    assert ModelConfig.from_dict(saved).attention_impl == "reference"
    assert ModelConfig.from_dict({**saved, "attention_impl": "fast"}).attention_impl == "fast"
