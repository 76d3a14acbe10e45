"""Which videos are used: manifests with their quarantine reports, and the subsets cut from them
(K400-mini, low-shot UCF101)."""
