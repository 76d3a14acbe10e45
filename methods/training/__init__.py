"""The shared training engine: one loop for every method's pretraining and for supervised training
(seeding, DDP, bf16, resume tied to its inputs, checkpoints, logs, plots), the method contract it
runs, and the contrastive building blocks the five papers share."""
