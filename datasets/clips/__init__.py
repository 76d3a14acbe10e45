"""From a manifest row to a network input: clip plans (`sampling`), CPU and DALI decoding of
planned clips, and the readers that turn a plan into a normalised clip (`reader`)."""
