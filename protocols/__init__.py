"""Evaluation protocols: a pretrained checkpoint in, metrics JSON out (see CONTRIBUTING.md)."""

# Protocols whose rules exist; a table row naming any other protocol renders as "not run".
IMPLEMENTED = {"linear", "retrieval", "finetune", "lowshot"}
