"""Controllable Augmentations (Qian, Lin, See, Li 2022): local-global region contrast, low-level
shortcut elimination and temporal dependency. Equations in losses.py, the position transformations
in sampling.py, the low-level ones in augment.py, samples in data.py, the model in model.py,
hyperparameters in config.yaml. `METHOD` is what the shared engine trains."""
from methods.ctrlaug.model import ControllableAugmentations as METHOD

__all__ = ["METHOD"]
