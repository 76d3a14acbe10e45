"""Where videos come from: the registry of datasets, their official layouts and annotation
parsers, and the generated fixture datasets that stand in for them at smoke scale."""
