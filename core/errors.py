"""Error types of the suite. Each message names the file or value at fault."""


class SuiteError(RuntimeError):
    """Base class: an error a user can act on (bad input, missing data, bad config)."""


class MissingInputError(SuiteError):
    """A dataset root, annotation file, video or model weight file is absent."""


class VideoDecodeError(SuiteError):
    """A video cannot be opened or decoded, or is shorter than required."""


class AnnotationError(SuiteError):
    """An annotation file has a malformed line or names an unknown class or file."""


class ConfigError(SuiteError):
    """A configuration value is missing or invalid."""


class CheckpointError(SuiteError):
    """A checkpoint is truncated or corrupt, or needs more than tensors and plain containers to load."""


class MetricsError(SuiteError):
    """A metrics JSON is unreadable or does not follow its protocol's schema (tables/metrics.py)."""


class CorruptInputError(SuiteError):
    """A precomputed input (a motion cache) is unreadable or holds non-finite values."""
