"""MCL (Li et al., ICCV 2021): motion-focused contrastive learning."""
