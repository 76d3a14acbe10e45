"""CMD (Huang et al., CVPR 2021): context and motion decoupling. Equations in losses.py, which
frames a sample reads in sampling.py, samples in data.py, the model in model.py, hyperparameters
in config.yaml. `METHOD` is what the shared engine trains."""
from methods.cmd.model import CMD as METHOD

__all__ = ["METHOD"]
