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
    # ... and at smoke and mini they train exactly as the UCF101 variant, on other data.
    for scale in ("smoke", "mini"):
        k400, ucf = method_config("cmd", scale, "full_c3d_k400"), method_config("cmd", scale, "full_c3d")
        assert {k: v for k, v in k400.items() if k != "variant"} == {k: v for k, v in ucf.items() if k != "variant"}


def test_a_profile_naming_an_unknown_variant_is_refused(monkeypatch):
    profile = config.load_scale("smoke")
    broken = {**profile, "cmd": {**profile["cmd"], "variants": {"full_c3d_typo": {"batch_size": 2}}}}
    monkeypatch.setattr(config, "load_scale", lambda scale: broken)
    with pytest.raises(ConfigError, match="full_c3d_typo"):
        method_config("cmd", "smoke", "full_c3d")
