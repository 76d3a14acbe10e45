"""Method configs merged with scale profiles: a profile's `variants:` block sizes the variants that
change a size the profile sets, and names only variants that exist."""
import pytest

from core import config
from core.config import method_config
from core.errors import ConfigError


def test_a_profile_sizes_the_variants_that_carry_a_full_scale_batch():
    # CMD's Kinetics-400 variants carry §4.1's batch of 512 at full scale ...
    full = method_config("cmd", "full", "full_c3d_k400")
    assert (full["batch_size"], full["optimizer"]["lr"]) == (512, pytest.approx(0.256))
    assert method_config("cmd", "full", "full_c3d")["batch_size"] == 64
    # ... and at smoke and mini they train exactly as the UCF101 variant, on other data (the UCF101
    # run also keeps Table 7's snapshots, which change nothing of its training).
    same = lambda cfg: {k: v for k, v in cfg.items() if k not in ("variant", "snapshot_epochs")}  # noqa: E731
    for scale in ("smoke", "mini"):
        assert same(method_config("cmd", scale, "full_c3d_k400")) == same(method_config("cmd", scale, "full_c3d"))


def test_a_profile_naming_an_unknown_variant_is_refused(monkeypatch):
    profile = config.load_scale("smoke")
    broken = {**profile, "cmd": {**profile["cmd"], "variants": {"full_c3d_typo": {"batch_size": 2}}}}
    monkeypatch.setattr(config, "load_scale", lambda scale: broken)
    with pytest.raises(ConfigError, match="full_c3d_typo"):
        method_config("cmd", "smoke", "full_c3d")
