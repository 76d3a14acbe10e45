"""Clip loading with NVIDIA DALI, with the semantics of the CPU path (`datasets.clips.decode`).

The pipeline receives, through `fn.external_source`, each video's encoded bytes and its
precomputed `datasets.clips.sampling.ClipPlan` (frame indices, crop offset, flip), so the frames and
crops are chosen by the same numpy code as on the CPU path; DALI only executes the plan:

1. `fn.decoders.video(frames=plan.indices, pad_mode="none")` decodes exactly the planned frames
   (repeats allowed; an index past the end is an error, never padding), as RGB;
   device "mixed" decodes with NVDEC on the GPU, device "cpu" with libavcodec (DALI's CPU decoder
   reads only VP8, VP9 and MJPEG, hence the VP9 transcodes used in CI);
2. `fn.resize(size=resized_hw(...), interp_type=INTERP_LINEAR, antialias=False)`: bilinear,
   half-pixel centres, no antialiasing, like torch `interpolate(align_corners=False,
   antialias=False)` on the CPU path;
3. `fn.slice` at (top, left) of size crop_size x crop_size;
4. `fn.flip(horizontal=plan.flip)`;
5. `fn.transpose` to (3, T, H, W) unless layout "THWC" is asked for.

DALI reports a failed sample as a failed batch; the batch is then decoded one video at a time
to name the file at fault in the `VideoDecodeError`.

Variable frame rate: DALI locates frames by timestamp at the stream's nominal rate, so it is fed
the constant-rate transcodes only (`h264_cfr` for NVDEC, `vp9` in CI;
`datasets.transcodes.transcode` keeps every frame and re-times it), where frame index and
timestamp agree.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.errors import VideoDecodeError
from datasets.clips.decode import video_info
from datasets.clips.sampling import ClipPlan, ClipSpec, resized_hw

LAYOUTS = ("CTHW", "THWC")


def _clip_pipeline(batch_size: int, decoder_device: str, layout: str, num_threads: int, device_id):
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(
        batch_size=batch_size, num_threads=num_threads, device_id=device_id, prefetch_queue_depth=1
    )
    def clips():
        encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
        indices = fn.external_source(name="indices", dtype=types.INT32, ndim=1)
        size = fn.external_source(name="size", dtype=types.FLOAT, ndim=1)
        anchor = fn.external_source(name="anchor", dtype=types.INT32, ndim=1)
        shape = fn.external_source(name="shape", dtype=types.INT32, ndim=1)
        flip = fn.external_source(name="flip", dtype=types.INT32, ndim=0)
        frames = fn.decoders.video(encoded, device=decoder_device, frames=indices, pad_mode="none")
        frames = fn.resize(
            frames,
            size=size,
            interp_type=types.INTERP_LINEAR,
            antialias=False,
            subpixel_scale=False,
        )
        frames = fn.slice(frames, anchor, shape, axes=[1, 2])  # F, H, W, C: crop H and W
        frames = fn.flip(frames, horizontal=flip)
        if layout == "CTHW":
            frames = fn.transpose(frames, perm=[3, 0, 1, 2])
        return frames

    pipe = clips()
    pipe.build()
    return pipe


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoDecodeError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: video file is empty (0 bytes)")


class DaliClipLoader:
    """A built DALI pipeline that turns (path, ClipPlan) pairs into uint8 clips.

    Build it once and call `load` for many batches: building costs far more than a batch.
    `device="gpu"` decodes with NVDEC and returns CUDA tensors; `device="cpu"` returns CPU tensors.
    """

    def __init__(
        self,
        spec: ClipSpec,
        device: str = "cpu",
        batch_size: int = 8,
        layout: str = "CTHW",
        num_threads: int = 2,
        device_id: int = 0,
    ) -> None:
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.spec, self.device, self.batch_size, self.layout = spec, device, batch_size, layout
        self.num_threads = num_threads
        self.device_id = device_id if device == "gpu" else None
        self._pipe = self._build(batch_size)
        self._hw_cache: dict[str, tuple[int, int]] = {}

    def _build(self, batch_size: int):
        decoder = "mixed" if self.device == "gpu" else "cpu"
        return _clip_pipeline(batch_size, decoder, self.layout, self.num_threads, self.device_id)

    def _frame_hw(self, path: Path) -> tuple[int, int]:
        key = str(path)
        if key not in self._hw_cache:
            info = video_info(path)
            self._hw_cache[key] = (info["height"], info["width"])
        return self._hw_cache[key]

    def _inputs(self, paths: Sequence[Path], plans: Sequence[ClipPlan]) -> dict:
        c = self.spec.crop_size
        inputs = {k: [] for k in ("encoded", "indices", "size", "anchor", "shape", "flip")}
        for path, plan in zip(paths, plans):
            _check_file(path)
            rh, rw = resized_hw(*self._frame_hw(path), self.spec.short_side)
            top, left = plan.crop
            if top < 0 or left < 0 or top + c > rh or left + c > rw:
                raise ValueError(
                    f"{path}: crop {c} at (top={top}, left={left}) outside the resized frame {(rh, rw)}"
                )
            inputs["encoded"].append(np.fromfile(path, dtype=np.uint8))
            inputs["indices"].append(np.asarray(plan.indices, dtype=np.int32))
            inputs["size"].append(np.array([rh, rw], dtype=np.float32))
            inputs["anchor"].append(np.array([top, left], dtype=np.int32))
            inputs["shape"].append(np.array([c, c], dtype=np.int32))
            inputs["flip"].append(np.array(int(plan.flip), dtype=np.int32))
        return inputs

    def _run(self, pipe, inputs: dict) -> list[torch.Tensor]:
        for name, data in inputs.items():
            pipe.feed_input(name, data)
        (out,) = pipe.run()
        if self.device == "gpu":
            return _gpu_to_torch(out, self.device_id)
        return [torch.from_numpy(np.array(out[i])) for i in range(len(out))]

    def load(self, paths: Sequence[str | os.PathLike], plans: Sequence[ClipPlan]) -> list[torch.Tensor]:
        """One uint8 clip per (path, plan): (3, T, crop, crop), or (T, crop, crop, 3) for THWC."""
        paths = [Path(p) for p in paths]
        if len(paths) != len(plans):
            raise ValueError(f"{len(paths)} paths but {len(plans)} plans")
        clips: list[torch.Tensor] = []
        for b in range(0, len(paths), self.batch_size):
            batch_paths, batch_plans = paths[b : b + self.batch_size], plans[b : b + self.batch_size]
            inputs = self._inputs(batch_paths, batch_plans)
            try:
                clips.extend(self._run(self._pipe, inputs))
            except RuntimeError as e:
                self._pipe = self._build(self.batch_size)  # a failed DALI pipeline is not reusable
                self._raise_for_culprit(batch_paths, batch_plans, e)
        return clips

    def _raise_for_culprit(self, paths, plans, batch_error: RuntimeError):
        for path, plan in zip(paths, plans):
            single = self._build(1)
            try:
                self._run(single, self._inputs([path], [plan]))
            except RuntimeError as e:
                raise VideoDecodeError(
                    f"{path}: DALI could not decode frames {list(plan.indices)}: {_dali_reason(e)}"
                ) from e
        raise VideoDecodeError(
            f"DALI failed on the batch {[str(p) for p in paths]}: {_dali_reason(batch_error)}"
        ) from batch_error


def _dali_reason(e: Exception) -> str:
    """The last meaningful line of a DALI error (the traceback DALI adds is not useful here)."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    if "encountered:" in lines:
        lines = lines[lines.index("encountered:") + 1 :]
    reason = " ".join(lines).split(" C++ context:")[0]
    return reason[:500]


def _gpu_to_torch(out, device_id: int) -> list[torch.Tensor]:
    """Copy a DALI GPU batch into CUDA torch tensors (DALI's documented `feed_ndarray` route)."""
    from nvidia.dali.plugin.pytorch import feed_ndarray

    dense = out.as_tensor()  # every clip has the same shape
    batch = torch.empty(dense.shape(), dtype=torch.uint8, device=f"cuda:{device_id}")
    feed_ndarray(dense, batch, cuda_stream=torch.cuda.current_stream(device_id))
    torch.cuda.current_stream(device_id).synchronize()
    return list(batch.unbind(0))


def dali_load_clips(
    paths: Sequence[str | os.PathLike],
    plans: Sequence[ClipPlan],
    spec: ClipSpec,
    device: str = "cpu",
    batch_size: int = 8,
    layout: str = "CTHW",
    num_threads: int = 2,
) -> list[torch.Tensor]:
    """Decode one planned clip per path with DALI: uint8 (3, T, crop, crop) each (CPU or CUDA).

    Builds a pipeline for this call; for repeated calls keep a `DaliClipLoader`.
    """
    if not paths:
        return []
    loader = DaliClipLoader(
        spec, device=device, batch_size=min(batch_size, len(paths)), layout=layout, num_threads=num_threads
    )
    return loader.load(paths, plans)
