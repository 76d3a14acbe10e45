"""Motion inputs computed once per video and cached: MaCLR's flow, flow edges and frame
differences (`flow`), MCL's TV-L1 motion maps (`tvl1`), CMD's I-frames and motion vectors
(`compressed`), all through one per-video extraction loop (`cache`)."""

# MaCLR's motion inputs and their channels (§3.2, Table 1b); the flow extractor writes them and
# every encoder that reads them takes its input channels from here.
KINDS = {"edge": 1, "flow": 2, "diff": 3}
