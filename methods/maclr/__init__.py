"""MaCLR (Xiao, Tighe, Modolo; ECCV 2022): equations in losses.py, sampler in data.py, model in
model.py, hyperparameters in config.yaml. `METHOD` is what the shared engine trains."""
from methods.maclr.model import MaCLR as METHOD

__all__ = ["METHOD"]
