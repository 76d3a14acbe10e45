"""MCL (Li et al., ICCV 2021): motion-focused contrastive learning. Equations in losses.py, the
motion-focused augmentation in sampling.py, samples in data.py, the model in model.py,
hyperparameters in config.yaml. `METHOD` is what the shared engine trains."""
from methods.mcl.model import MCL as METHOD

__all__ = ["METHOD"]
