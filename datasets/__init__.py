"""Raw video to training clips, one sub-package per stage of the data flow:
sources (official layouts, parsers, generated fixtures) -> manifests (usable videos, subsets)
-> transcodes -> motion (cached motion inputs) -> clips (sampling, decoding, clip readers)."""
