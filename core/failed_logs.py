"""A failing job's log on the terminal.

Every rule sends its stderr to a log file, where the suite's one-line `error: ...` lands; without
help the terminal shows only "check log file(s)". The Snakefile's `onerror:` handler calls
`show_failed_logs` with Snakemake's own log, which names each failed job's log files; their last
lines are printed, so the clear message reaches the user with a plain `snakemake ...` command.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

FAILED_JOB_LOG = re.compile(r"^\s*log: (.+?) \(check log file\(s\) for error details\)", re.M)


def failed_job_logs(snakemake_logs) -> list[Path]:
    """The log files of the jobs that failed, in the order Snakemake reported them. Snakemake
    passes `onerror` a list of its log files (one path in older versions)."""
    paths = [snakemake_logs] if isinstance(snakemake_logs, (str, Path)) else list(snakemake_logs or [])
    text = ""
    for path in paths:
        try:
            text += Path(path).read_text(errors="replace")
        except OSError:
            continue
    logs: list[Path] = []
    for match in FAILED_JOB_LOG.finditer(text):
        for name in match.group(1).split(", "):
            if Path(name) not in logs:
                logs.append(Path(name))
    return logs


def show_failed_logs(snakemake_logs, lines: int = 15, stream=sys.stderr) -> None:
    for path in failed_job_logs(snakemake_logs):
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        print(f"\n--- last lines of {path} ---", file=stream)
        print("\n".join(line.split("\r")[-1] for line in tail), file=stream)  # progress bars: their last state
