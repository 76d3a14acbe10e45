"""Training batches from DALI's own batched pipeline, in place of a PyTorch DataLoader whose
workers decode one clip at a time (`decoder: dali`).

DALI's Python workers (a parallel external source, `batch=False`: one callback per sample) build
each sample with the dataset's own `__getitem__`, with its `dali` ClipReaders deferred
(`datasets.clips.reader._DEFERRED`): a visual clip is then not decoded but logged as its file,
plan and augmentation seed. The callback hands the pipeline each logged clip's inputs (the file's
bytes and the plan, `dali_decode._clip_inputs`) and every other tensor of the sample as it is;
the pipeline decodes the clips of a whole batch (`dali_decode._decode_graph`: NVDEC on a GPU,
DALI's CPU decoder otherwise) with `prefetch` batches in flight, and the main process finishes
each clip (`ClipReader.finish`: [0, 1], augmentation from the clip's seed, normalisation).

Samples are the same function of (seed, epoch, index) as on the DataLoader path: planning,
motion clips and every other draw happen in `__getitem__` as there. Without augmentation a batch
is the per-clip DALI path's to the bit; with it, a clip's augmentation draws from a seed the sample
draws for it (one draw where the per-clip path makes the augmentation's own), so the augmentation
and the sample's later torch draws differ from that path's, and are as reproducible.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from datasets.clips import reader as clip_reader
from datasets.clips.dali_decode import (INPUTS, DaliClipLoader, _check_file, _clip_inputs, _decode_graph, _frame_hw,
                                         _gpu_to_torch)


def deferred_sample(dataset, index: int) -> tuple[dict, list]:
    """dataset[index] with its `dali` clips deferred: (sample, the logged DeferredClips)."""
    log: list = []
    clip_reader._DEFERRED["log"] = log
    try:
        sample = dataset[index]
    finally:
        clip_reader._DEFERRED["log"] = None
    return sample, log


class SampleSource:
    """The parallel external source's callback: sample i of the epoch is `dataset[indices[i]]`,
    flattened to the pipeline's inputs: for each key in `keys`, a deferred clip's INPUTS and its
    seed, or the tensor as an array. Pickled into DALI's spawned workers with the dataset."""

    def __init__(self, dataset, indices: Sequence[int], epoch: int, keys: list[str], clip_keys: set[str]):
        self.dataset, self.indices, self.epoch, self.keys, self.clip_keys = dataset, list(indices), epoch, keys, clip_keys
        self._epoch_set = False

    def __call__(self, sample_info) -> tuple[np.ndarray, ...]:
        i = sample_info.idx_in_epoch
        if i >= len(self.indices):
            raise StopIteration
        if not self._epoch_set and hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
            self._epoch_set = True
        sample, log = deferred_sample(self.dataset, self.indices[i])
        out = []
        for key in self.keys:
            value = sample[key]
            if key in self.clip_keys:
                clip = log[int(value)]
                _check_file(clip.path)
                out += [*_clip_inputs(clip.path, clip.plan, clip.reader.spec, _frame_hw(clip.path)),
                        np.array(clip.seed, dtype=np.int64)]
            else:
                out.append(value.numpy() if torch.is_tensor(value) else np.asarray(value))
        return tuple(out)


def _pipeline(source: SampleSource, probe: dict, batch_size: int, device: str, num_threads: int, device_id,
              py_workers: int, prefetch: int):
    from nvidia.dali import fn, pipeline_def, types

    dtypes, ndims = [], []
    for key in source.keys:
        if key in source.clip_keys:
            dtypes += [types.UINT8, types.INT32, types.FLOAT, types.INT32, types.INT32, types.INT32, types.INT64]
            ndims += [1, 1, 1, 1, 1, 0, 0]
        else:
            array = probe[key].numpy() if torch.is_tensor(probe[key]) else np.asarray(probe[key])
            dtypes.append(types.to_dali_type(array.dtype))
            ndims.append(array.ndim)

    @pipeline_def(batch_size=batch_size, num_threads=num_threads, device_id=device_id, prefetch_queue_depth=prefetch,
                  py_num_workers=py_workers, py_start_method="spawn")  # spawn: safe after CUDA is initialised
    def samples():
        flat = list(fn.external_source(source=source, num_outputs=len(dtypes), batch=False, parallel=True,
                                       dtype=dtypes, ndim=ndims))
        outputs = []
        for key in source.keys:
            if key in source.clip_keys:
                inputs, seed, flat = flat[:len(INPUTS)], flat[len(INPUTS)], flat[len(INPUTS) + 1:]
                outputs += [_decode_graph(*inputs, "mixed" if device == "gpu" else "cpu", "CTHW"), seed]
            else:
                outputs.append(flat.pop(0))
        return tuple(outputs)

    pipe = samples()
    pipe.build()
    return pipe


class DaliBatches:
    """One epoch of training batches (dicts of stacked tensors, as a DataLoader collates them) of
    `dataset[indices]`, `batch_size` samples each, from DALI's batched pipeline (module doc).
    `drop_last` drops a last partial batch; otherwise it is decoded padded and cut. Clips are CUDA
    tensors with `device="gpu"`, every other tensor stays on the CPU."""

    def __init__(self, dataset, indices: Sequence[int], epoch: int, batch_size: int, drop_last: bool = True,
                 device: str = "cpu", num_threads: int = 2, device_id: int = 0, py_workers: int = 2, prefetch: int = 2):
        if prefetch < 2:
            raise ValueError(f"prefetch must be at least 2 batches (one decoding while one is consumed), got {prefetch}")
        indices = [int(i) for i in indices]
        if drop_last:
            indices = indices[: len(indices) // batch_size * batch_size]
        self.dataset, self.indices, self.epoch, self.batch_size = dataset, indices, epoch, batch_size
        self.device, self.num_threads, self.prefetch = device, num_threads, prefetch
        self.device_id = device_id if device == "gpu" else None
        self.py_workers = max(1, py_workers)

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def __iter__(self) -> Iterator[dict]:
        if not self.indices:
            return
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(self.epoch)
        probe, log = deferred_sample(self.dataset, self.indices[0])  # the sample's keys, types and clip readers
        placeholders = {id(c.placeholder): c for c in log}
        keys = list(probe)
        clip_keys = {k for k, v in probe.items() if torch.is_tensor(v) and id(v) in placeholders}
        readers = {k: placeholders[id(probe[k])].reader for k in clip_keys}
        n, b = len(self.indices), self.batch_size
        padded = self.indices + self.indices[-1:] * (-n % b)
        source = SampleSource(self.dataset, padded, self.epoch, keys, clip_keys)
        pipe = _pipeline(source, probe, b, self.device, self.num_threads, self.device_id, self.py_workers, self.prefetch)
        try:
            for start in range(0, n, b):
                try:
                    outputs = list(pipe.run())
                except RuntimeError as e:
                    self._raise_for_culprit(padded[start:start + b], e)
                size = min(b, n - start)
                batch = {}
                for key in keys:
                    if key in clip_keys:
                        clips, seeds = outputs.pop(0), outputs.pop(0)
                        if self.device == "gpu":
                            clips = torch.stack(_gpu_to_torch(clips, self.device_id))
                        else:
                            clips = torch.from_numpy(np.array(clips.as_array()))
                        seeds = np.array(seeds.as_array())
                        batch[key] = torch.stack([readers[key].finish(clips[j], int(seeds[j])) for j in range(size)])
                    else:
                        batch[key] = torch.from_numpy(np.array(outputs.pop(0).as_array()))[:size]
                yield batch
        finally:
            del pipe  # stops its Python workers

    def _raise_for_culprit(self, indices: Sequence[int], error: RuntimeError):
        """Rebuild the failed batch's requests here and decode them one at a time to name the file."""
        paths, plans, spec = [], [], None
        for index in indices:
            _, log = deferred_sample(self.dataset, index)
            for clip in log:
                paths.append(clip.path)
                plans.append(clip.plan)
                spec = clip.reader.spec
        loader = DaliClipLoader(spec, self.device, 1, "CTHW", self.num_threads, self.device_id or 0)
        loader._raise_for_culprit(paths, plans, error)
