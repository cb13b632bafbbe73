"""Every setting the command runs has a unique name and its swapped twin right after it."""

from experiments.hiads.settings import Config, default_settings


def test_every_setting_is_followed_by_its_swapped_twin():
    settings = default_settings()
    names = [s.name for s in settings]
    assert len(names) == len(set(names))
    for s, twin in zip(settings[::2], settings[1::2], strict=True):
        assert not s.swap and twin.swap and twin.name == s.name + "_swap"
        assert twin == s.twin()
    roles = {s.role for s in settings}
    assert roles == {"test", "control-", "control+"}


def test_config_overrides_every_setting():
    s = default_settings()[0]
    assert Config(seeds=3, steps=50).apply(s).seeds == 3
    assert Config(seeds=3, steps=50).apply(s).agents == s.agents
    assert Config().apply(s) == s
