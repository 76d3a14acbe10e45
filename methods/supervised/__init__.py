"""Supervised pretraining with labels on the shared engine (the papers' "Supervised" rows): model.py;
its variants in config.yaml. `METHOD` is what the DAG reads."""
from methods.supervised.model import Supervised as METHOD

__all__ = ["METHOD"]
