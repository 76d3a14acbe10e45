"""HCML (Yang et al., BMVC 2021): hierarchical contrastive motion learning. Equations in losses.py
(Eq. 1, the cost volume, with the prime motion block in methods/backbones/hcml.py), the model and
its progressive stages in model.py, training with labels (Eq. 5) in joint.py, clips in data.py,
hyperparameters in config.yaml. `METHOD` is what the shared engine trains."""
from methods.hcml.model import HCML as METHOD

__all__ = ["METHOD"]
