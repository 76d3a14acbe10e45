"""Start a job's Python module on the GPUs its job was given: one process per GPU under torchrun
(DDP) when it was given several and sees several, else one process (on the CPU when it sees none).

    python -m core.launch --gpus 8 -m methods.training.pretrain --method maclr ...

`--gpus` is the job's GPU count (the rule's `resources.gpu`); the processes per node are the
smaller of it and the GPUs the job sees (a SLURM job sees the GPUs it was allocated).
"""
from __future__ import annotations

import argparse
import os
import sys


def command(gpus: int, visible: int, module_args: list[str]) -> list[str]:
    processes = min(gpus, visible)
    launch = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"] if processes > 1 else []
    return [sys.executable, *launch, *module_args]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpus", type=int, required=True, help="the job's GPU count")
    args, rest = parser.parse_known_args(argv)
    if rest[:1] != ["-m"] or len(rest) < 2:
        parser.error("expected -m MODULE [ARGS...] after --gpus")
    visible = 0
    if args.gpus > 1:
        import torch

        visible = torch.cuda.device_count()
    cmd = command(args.gpus, visible, rest)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
