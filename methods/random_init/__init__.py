"""The random-initialisation baseline (the papers' "Scratch", "Rand Init" and "w/o Pretrain" rows):
baseline.py; its variants in config.yaml. `METHOD` is what the DAG reads."""
from methods.random_init.baseline import RandomInit as METHOD

__all__ = ["METHOD"]
