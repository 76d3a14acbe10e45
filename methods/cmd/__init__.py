"""CMD (Huang et al., CVPR 2021): context and motion decoupling."""
