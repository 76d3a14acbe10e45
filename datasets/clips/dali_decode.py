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

Two ways to run it:
- `DaliClipLoader.load` feeds one batch at a time from the calling process (`feed_input`) and
  waits for it: what a PyTorch Dataset calls per clip (`datasets.clips.reader.load_visual_clip`);
- `DaliClipStream` is DALI's own batched pipeline over a whole list of requests: a parallel
  external source (`batch=False` per-sample callback, `py_num_workers` Python worker processes)
  reads each video's bytes and its plan, and the pipeline keeps `prefetch_queue_depth` (>= 2)
  batches decoding ahead of the consumer, so a training loop takes ready batches. Both run the
  same operators (`_decode_graph`), so they give the same clips.

Variable frame rate: DALI locates frames by timestamp at the stream's nominal rate, so it is fed
the constant-rate transcodes only (`h264_cfr` for NVDEC, `vp9` in CI;
`datasets.transcodes.transcode` keeps every frame and re-times it), where frame index and
timestamp agree.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np
import torch

from core.errors import VideoDecodeError
from datasets.clips.sampling import ClipPlan, ClipSpec, resized_hw

LAYOUTS = ("CTHW", "THWC")


def _decode_graph(encoded, indices, size, anchor, shape, flip, decoder_device: str, layout: str):
    """The operators both pipelines run on one clip's inputs (module doc, steps 1-5)."""
    from nvidia.dali import fn, types

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
        return _decode_graph(encoded, indices, size, anchor, shape, flip, decoder_device, layout)

    pipe = clips()
    pipe.build()
    return pipe


INPUTS = ("encoded", "indices", "size", "anchor", "shape", "flip")


def _check_crop(path: Path, plan: ClipPlan, spec: ClipSpec, frame_hw: tuple[int, int]) -> None:
    c = spec.crop_size
    rh, rw = resized_hw(*frame_hw, plan.resize_to(spec))
    top, left = plan.crop
    if top < 0 or left < 0 or top + c > rh or left + c > rw:
        raise ValueError(f"{path}: crop {c} at (top={top}, left={left}) outside the resized frame {(rh, rw)}")


def _clip_inputs(path: Path, plan: ClipPlan, spec: ClipSpec, frame_hw: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """One clip's pipeline inputs, in the order of INPUTS: the file's bytes, the planned frames, the
    resized frame size, the crop's (top, left) and size, and the flip."""
    c = spec.crop_size
    rh, rw = resized_hw(*frame_hw, plan.resize_to(spec))
    top, left = plan.crop
    return (
        np.fromfile(path, dtype=np.uint8),
        np.asarray(plan.indices, dtype=np.int32),
        np.array([rh, rw], dtype=np.float32),
        np.array([top, left], dtype=np.int32),
        np.array([c, c], dtype=np.int32),
        np.array(int(plan.flip), dtype=np.int32),
    )


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoDecodeError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise VideoDecodeError(f"{path}: video file is empty (0 bytes)")


_FRAME_HW: dict[str, tuple[int, int]] = {}


def _frame_hw(path) -> tuple[int, int]:
    """(height, width) from the stream's header, as `video_info` reads it but without counting
    frames (a WebM has no count); kept per process, since a worker reads the same videos again."""
    key = str(path)
    if key not in _FRAME_HW:
        try:
            with av.open(key) as container:
                codec = container.streams.video[0].codec_context
                _FRAME_HW[key] = (int(codec.height), int(codec.width))
        except (av.FFmpegError, IndexError) as e:
            raise VideoDecodeError(f"{path}: cannot read the video stream's header: {e}") from None
    return _FRAME_HW[key]


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

    def _build(self, batch_size: int):
        decoder = "mixed" if self.device == "gpu" else "cpu"
        return _clip_pipeline(batch_size, decoder, self.layout, self.num_threads, self.device_id)

    def _inputs(self, paths: Sequence[Path], plans: Sequence[ClipPlan]) -> dict:
        inputs = {k: [] for k in INPUTS}
        for path, plan in zip(paths, plans):
            _check_file(path)
            _check_crop(path, plan, self.spec, _frame_hw(path))
            for name, value in zip(INPUTS, _clip_inputs(path, plan, self.spec, _frame_hw(path))):
                inputs[name].append(value)
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


class ClipRequests:
    """The per-sample source of `DaliClipStream`'s parallel external source: sample i of the epoch
    is request i's inputs (INPUTS). Plain lists and a spec, so it pickles into DALI's spawned
    Python workers; past the end (the pipeline prefetches ahead) it ends the epoch."""

    def __init__(self, paths: Sequence[Path], plans: Sequence[ClipPlan], spec: ClipSpec,
                 frame_hw: Sequence[tuple[int, int]]):
        self.paths, self.plans, self.spec, self.frame_hw = list(paths), list(plans), spec, list(frame_hw)

    def __len__(self) -> int:
        return len(self.paths)

    def __call__(self, sample_info) -> tuple[np.ndarray, ...]:
        i = sample_info.idx_in_epoch
        if i >= len(self.paths):
            raise StopIteration
        return _clip_inputs(self.paths[i], self.plans[i], self.spec, self.frame_hw[i])


def _stream_pipeline(source: ClipRequests, batch_size: int, decoder_device: str, layout: str, num_threads: int,
                     device_id, py_workers: int, prefetch: int):
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(
        batch_size=batch_size, num_threads=num_threads, device_id=device_id, prefetch_queue_depth=prefetch,
        py_num_workers=py_workers, py_start_method="spawn",  # spawn: safe after CUDA is initialised
    )
    def clips():
        encoded, indices, size, anchor, shape, flip = fn.external_source(
            source=source, num_outputs=len(INPUTS), batch=False, parallel=True,
            dtype=[types.UINT8, types.INT32, types.FLOAT, types.INT32, types.INT32, types.INT32],
            ndim=[1, 1, 1, 1, 1, 0],
        )
        return _decode_graph(encoded, indices, size, anchor, shape, flip, decoder_device, layout)

    pipe = clips()
    pipe.build()
    return pipe


class DaliClipStream:
    """DALI's own batched pipeline over a list of (path, ClipPlan) requests: yields uint8 batches
    (B, 3, T, crop, crop) (or (B, T, crop, crop, 3) for THWC) in request order, CUDA tensors with
    `device="gpu"` (NVDEC), CPU tensors otherwise. The files are read and their inputs built by
    `py_workers` Python worker processes (a parallel external source), and `prefetch` batches are
    decoded ahead of the consumer, so the caller (a training loop) does not wait on one clip at a
    time. The clips are those `DaliClipLoader.load` gives for the same requests.

    One pipeline per `batches` call (one epoch of requests: its plans are drawn per epoch); the last
    batch is shorter when the requests do not fill it (the pipeline decodes it padded with copies
    of the last request). A batch DALI fails on is decoded again one clip at a time to name the file.
    """

    def __init__(self, spec: ClipSpec, device: str = "cpu", batch_size: int = 8, layout: str = "CTHW",
                 num_threads: int = 2, device_id: int = 0, py_workers: int = 2, prefetch: int = 2) -> None:
        if device not in ("cpu", "gpu"):
            raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if prefetch < 2:
            raise ValueError(f"prefetch must be at least 2 batches (one decoding while one is consumed), got {prefetch}")
        self.spec, self.device, self.batch_size, self.layout = spec, device, batch_size, layout
        self.num_threads, self.py_workers, self.prefetch = num_threads, max(1, py_workers), prefetch
        self.device_id = device_id if device == "gpu" else None

    def batches(self, paths: Sequence[str | os.PathLike], plans: Sequence[ClipPlan]) -> Iterator[torch.Tensor]:
        paths = [Path(p) for p in paths]
        if len(paths) != len(plans):
            raise ValueError(f"{len(paths)} paths but {len(plans)} plans")
        if not paths:
            return
        for path, plan in zip(paths, plans):  # named here, before any worker starts
            _check_file(path)
            _check_crop(path, plan, self.spec, _frame_hw(path))
        n, b = len(paths), self.batch_size
        padded = -n % b
        source = ClipRequests(paths + paths[-1:] * padded, list(plans) + list(plans[-1:]) * padded, self.spec,
                              [_frame_hw(p) for p in paths + paths[-1:] * padded])
        decoder = "mixed" if self.device == "gpu" else "cpu"
        pipe = _stream_pipeline(source, b, decoder, self.layout, self.num_threads, self.device_id, self.py_workers,
                                self.prefetch)
        try:
            for start in range(0, n, b):
                try:
                    (out,) = pipe.run()
                except RuntimeError as e:
                    loader = DaliClipLoader(self.spec, self.device, 1, self.layout, self.num_threads,
                                            self.device_id or 0)
                    loader._raise_for_culprit(paths[start:start + b], plans[start:start + b], e)
                if self.device == "gpu":
                    batch = torch.stack(_gpu_to_torch(out, self.device_id))
                else:
                    batch = torch.from_numpy(np.array(out.as_array()))
                yield batch[: min(b, n - start)]
        finally:
            del pipe  # stops its Python workers


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
