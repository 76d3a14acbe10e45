"""VidSitu verb prediction (MaCLR Sec. 4.3, Table 4b), in the official annotation shape.

Layout (TheShadow29/VidSitu, data/README.md): `vidsitu_annotations/split_files/
vseg_split_{train,valid}_lb.json` list the 10-second segment ids `v_<video>_seg_<start>_<end>`;
`vidsitu_annotations/vseg_ann_files/vsann_{train,valid}_lb.json` are lists of annotations, each
a dict with keys Ev1..Ev5 (one event per 2 seconds), each event holding at least `vid_seg_int`,
`Verb` and `VerbID` (and `Arg_List`, `Args`, `EvRel`, which verb prediction does not read); a
segment may have several annotations (the validation set has several annotators). Videos are
`vsitu_video_trimmed_dir/<vid_seg_int>.mp4`.

One manifest row per event: video id `<vid_seg_int>_Ev<k>` (k = 1..5), path the segment video,
window seconds 2(k-1)..2k of it (manifest column `start_frame`), label the event's most frequent
VerbID among the segment's annotations (as the official loader's `get_vb_data` takes the most
common one). Verb classes are the VerbIDs occurring in train, sorted (the official code reads a
prebuilt vocabulary file; the paper does not give it; our choice). A validation verb absent
from train gets label -1 and is counted in the log.

Validation rows also carry `label_set`: the verbs of the (up to) 10 annotators of the event, from
`vidsitu_annotations/vinfo_files/vinfo_valid_lb.json` (`vbid_lst: {Ev1: [...], ...}`), which the
official verb evaluation (vidsitu_code/evl_fns.py, EvlFn_Vb) scores against: a prediction is right
if it is any annotator's verb (protocols/finetune.py, `verb_metrics`).
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from core.errors import AnnotationError
from datasets.sources.official import Entry
from datasets.sources.annotations import json_list, read_json

ANN = "vidsitu_annotations"
VIDEOS = "vsitu_video_trimmed_dir"
SPLITS = {"train": "train", "valid": "val"}
EVENTS = tuple(f"Ev{k}" for k in range(1, 6))
EVENT_SECONDS = 2.0  # each event is 2 seconds of the 10-second segment
EVAL_ANNOTATORS = 10  # the official evaluation reads the first 10 verbs of an event (gt_vbs[ev_ix][:10])


def _annotator_verbs(path: Path) -> dict[str, list[list[str]]]:
    """vid_seg_int -> per event, every annotator's VerbID (vinfo file's `vbid_lst`)."""
    verbs = {}
    for i, info in enumerate(json_list(path, "VidSitu video-info file", ("vid_seg_int", "vbid_lst"))):
        lists = info["vbid_lst"]
        if not isinstance(lists, dict) or any(not isinstance(lists.get(ev), list) or not lists[ev] for ev in EVENTS):
            raise AnnotationError(f"{path}: entry {i} ({info['vid_seg_int']}): `vbid_lst` must list the verbs of each of {', '.join(EVENTS)}")
        verbs[info["vid_seg_int"]] = [[str(v) for v in lists[ev][:EVAL_ANNOTATORS]] for ev in EVENTS]
    return verbs


def _segment_verbs(path: Path) -> dict[str, list[list[str]]]:
    """vid_seg_int -> per event, the VerbIDs of all its annotations."""
    verbs: dict[str, list[list[str]]] = {}
    for i, ann in enumerate(json_list(path, "VidSitu annotation file", EVENTS)):
        segment = None
        for ev in EVENTS:
            event = ann[ev]
            if not isinstance(event, dict) or "VerbID" not in event or "vid_seg_int" not in event:
                raise AnnotationError(f"{path}: annotation {i}, {ev}: expected an object with 'vid_seg_int' and 'VerbID'")
            if segment is not None and event["vid_seg_int"] != segment:
                raise AnnotationError(f"{path}: annotation {i}: events name different segments")
            segment = event["vid_seg_int"]
        per_event = verbs.setdefault(segment, [[] for _ in EVENTS])
        for k, ev in enumerate(EVENTS):
            per_event[k].append(str(ann[ev]["VerbID"]))
    return verbs


def parse_vidsitu(root: str | Path) -> list[Entry]:
    root = Path(root)
    per_split = {}
    for official, split in SPLITS.items():
        segments = read_json(root / ANN / "split_files" / f"vseg_split_{official}_lb.json", f"VidSitu {official} split file")
        if not isinstance(segments, list):
            raise AnnotationError(f"{root / ANN / 'split_files'}: vseg_split_{official}_lb.json must be a list of segment ids")
        ann_path = root / ANN / "vseg_ann_files" / f"vsann_{official}_lb.json"
        verbs = _segment_verbs(ann_path)
        for seg in segments:
            if seg not in verbs:
                raise AnnotationError(f"{ann_path}: segment {seg!r} of the {official} split has no annotation")
        per_split[split] = (segments, verbs)
    vocab = sorted({v for segs in per_split["train"][1].values() for ev in segs for v in ev})
    index = {v: i for i, v in enumerate(vocab)}
    vinfo = root / ANN / "vinfo_files" / "vinfo_valid_lb.json"
    annotators = _annotator_verbs(vinfo)
    entries, unknown = [], 0
    for split, (segments, verbs) in per_split.items():
        for seg in segments:
            if split == "val" and seg not in annotators:
                raise AnnotationError(f"{vinfo}: segment {seg!r} of the valid split has no `vbid_lst`")
            for k, ev_verbs in enumerate(verbs[seg]):
                verb = Counter(ev_verbs).most_common(1)[0][0]
                label = index.get(verb, -1)
                unknown += label < 0
                label_set = ";".join(str(index.get(v, -1)) for v in annotators[seg][k]) if split == "val" else None
                entries.append(Entry(f"{seg}_{EVENTS[k]}", f"{VIDEOS}/{seg}.mp4", label, verb, split,
                                     window_s=(k * EVENT_SECONDS, (k + 1) * EVENT_SECONDS), label_set=label_set))
    if unknown:
        print(f"[vidsitu] {unknown} event(s) with a verb absent from train: label -1", file=sys.stderr)
    return entries
