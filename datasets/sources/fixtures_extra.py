"""Fixture datasets in the official layouts of SSv2, SSv1, Diving48, VidSitu and AVA v2.2.

Like `datasets.sources.fixtures` (UCF101, HMDB51, Kinetics-400): generated, never downloaded or
committed; real file naming and annotation formats (see each parser in datasets/sources/parsers/),
synthetic motion-defined videos (`datasets.sources.synthetic`). Sizes come only from the scale profile's
`fixtures.<key>` (config/scales/smoke.yaml); a profile without it is an error naming the key.

`bad_files: true` (the default) also writes the bad inputs each format can carry, so the
quarantine policy runs: an annotation row whose video is missing, an empty (0-byte, zero-frame)
file, a truncated file and a file shorter than one clip (SSv1: a missing folder, an empty folder
and a folder with a gap in its frame numbering). `BAD` lists their ids per dataset; the
preparation must name each in the quarantine report.

    python -m datasets.sources.fixtures --dataset ssv2 --root results/smoke/data/SomethingSomethingV2 --scale smoke
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.io import atomic_path, write_bytes, write_text
from datasets.sources.parsers.ava import AVA_60_CLASS_IDS, KEYFRAME_OFFSET
from datasets.sources.synthetic import class_patterns, render_frames, write_video
from datasets.transcodes.transcode import transcode

SHORT_FRAMES = 6  # a "video shorter than one clip" (smoke min_frames is 16)

SSV2_TEMPLATES = ["Pushing [something] from left to right", "Pushing [something] from right to left",
                  "Moving [something] up", "Moving [something] down", "Turning [something] upside down"]
DIVING48_VOCAB = [["Back", "15som", "NoTwis", "PIKE"], ["Back", "15som", "NoTwis", "TUCK"],
                  ["Forward", "25som", "1Twis", "PIKE"], ["Inward", "25som", "NoTwis", "TUCK"],
                  ["Reverse", "15som", "05Twis", "FREE"]]
VIDSITU_VERBS = ["talk (speak)", "walk (move)", "run (flee)", "look (see)", "hold (grasp)"]
AVA_CLASSES = [12, 17, 79, 80, 74]  # ids from the 60 evaluated classes
FIRST_KEYFRAME = KEYFRAME_OFFSET + 2  # 902 s: AVA's first annotated keyframe (protocols.ava_eval refuses earlier ones)

BAD = {
    "ssv2": ["900001", "900002", "900003", "900004"],
    "ssv1": ["900001", "900002", "900003"],
    "diving48": ["bad_missing", "bad_empty", "bad_truncated", "bad_short"],
    "vidsitu": [f"v_bad{k}_seg_0_10_Ev{e}" for k in range(4) for e in range(1, 6)],
    "ava": ["badMissing1", "badEmpty123", "badTruncat1", "badShort123"],
}


def _frames(cls: int, num_classes: int, cfg: dict, seed: int, num_frames: int | None = None) -> np.ndarray:
    return render_frames(class_patterns(num_classes)[cls], num_frames or cfg["frames"], cfg["height"], cfg["width"], seed=seed)


def _write(path: Path, frames: np.ndarray, fps: int) -> None:
    """Write a video; `.webm` goes through the suite's lossless VP9 transcode profile."""
    if path.suffix != ".webm":
        write_video(path, frames, fps)
        return
    src = path.with_name(f".{path.stem}.src.mp4")
    write_video(src, frames, fps)
    try:
        transcode(src, path, "vp9")
    finally:
        src.unlink(missing_ok=True)


def _bad_videos(root: Path, rel: dict[str, str], cfg: dict, seed: int) -> None:
    """Write the bad files: 'missing' (none), 'empty' (0 bytes), 'truncated' (cut), 'short'."""
    write_text(root / rel["empty"], "")
    _write(root / rel["short"], _frames(0, 1, cfg, seed, SHORT_FRAMES), cfg["fps"])
    full = root / rel["truncated"]
    _write(full, _frames(0, 1, cfg, seed + 1), cfg["fps"])
    data = full.read_bytes()
    write_bytes(full, data[: len(data) // 2])


def _json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=1) + "\n")


def make_ssv2(root: Path, cfg: dict, seed: int, bad: bool) -> dict:
    templates = SSV2_TEMPLATES[: cfg["num_classes"]]
    labels = {t.replace("[", "").replace("]", ""): str(i) for i, t in enumerate(templates)}
    lists = {"train": [], "validation": []}
    n = 0
    for cls, template in enumerate(tqdm(templates, desc="SSv2 fixtures", unit="class")):
        for i in range(cfg["videos_per_class"]):
            vid = str(100000 + n)
            split = "validation" if i == 0 else "train"
            lists[split].append({"id": vid, "label": template.replace("[something]", "a box").lower(),
                                 "template": template, "placeholders": ["a box"] * template.count("[something]")})
            _write(root / "20bn-something-something-v2" / f"{vid}.webm", _frames(cls, len(templates), cfg, seed * 7919 + n), cfg["fps"])
            n += 1
    if bad:
        ids = BAD["ssv2"]
        lists["train"] += [{"id": v, "label": "x", "template": templates[0], "placeholders": ["x"]} for v in ids]
        _bad_videos(root, {k: f"20bn-something-something-v2/{v}.webm" for k, v in zip(("missing", "empty", "truncated", "short"), ids)}, cfg, seed)
    _json(root / "labels" / "labels.json", labels)
    _json(root / "labels" / "train.json", lists["train"])
    _json(root / "labels" / "validation.json", lists["validation"])
    return {"videos": n, "classes": len(templates)}


def make_ssv1(root: Path, cfg: dict, seed: int, bad: bool) -> dict:
    import cv2

    names = [t.replace("[", "").replace("]", "") for t in SSV2_TEMPLATES[: cfg["num_classes"]]]
    lists = {"train": [], "validation": []}
    n = 0
    for cls, name in enumerate(tqdm(names, desc="SSv1 fixtures", unit="class")):
        for i in range(cfg["videos_per_class"]):
            vid = str(1 + n)
            lists["validation" if i == 0 else "train"].append(f"{vid};{name}")
            folder = root / "20bn-something-something-v1" / vid
            for t, frame in enumerate(_frames(cls, len(names), cfg, seed * 7919 + 500 + n)):
                with atomic_path(folder / f"{t + 1:05d}.jpg") as tmp:
                    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                    tmp.write_bytes(buf.tobytes())
            n += 1
    if bad:  # missing folder, empty folder, folder with a gap in its numbering
        missing, empty, gap = BAD["ssv1"]
        lists["train"] += [f"{v};{names[0]}" for v in (missing, empty, gap)]
        (root / "20bn-something-something-v1" / empty).mkdir(parents=True, exist_ok=True)
        src = root / "20bn-something-something-v1" / "1"
        for t in (1, 2, 4):
            write_bytes(root / "20bn-something-something-v1" / gap / f"{t:05d}.jpg", (src / f"{t:05d}.jpg").read_bytes())
    write_text(root / "something-something-v1-labels.csv", "".join(f"{c}\n" for c in names))
    for split, rows in lists.items():
        write_text(root / f"something-something-v1-{split}.csv", "".join(f"{r}\n" for r in rows))
    return {"videos": n, "classes": len(names)}


def make_diving48(root: Path, cfg: dict, seed: int, bad: bool) -> dict:
    vocab = DIVING48_VOCAB[: cfg["num_classes"]]
    lists = {"train": [], "test": []}
    n = 0
    for cls in tqdm(range(len(vocab)), desc="Diving48 fixtures", unit="class"):
        for i in range(cfg["videos_per_class"]):
            vid = f"_8Vy3dlHg2w_{n:05d}"
            lists["test" if i == 0 else "train"].append({"vid_name": vid, "label": cls, "start_frame": 100 * n, "end_frame": 100 * n + cfg["frames"]})
            _write(root / "rgb" / f"{vid}.mp4", _frames(cls, len(vocab), cfg, seed * 7919 + 1000 + n), cfg["fps"])
            n += 1
    if bad:
        lists["train"] += [{"vid_name": v, "label": 0, "start_frame": 0, "end_frame": 10} for v in BAD["diving48"]]
        _bad_videos(root, {k: f"rgb/{v}.mp4" for k, v in zip(("missing", "empty", "truncated", "short"), BAD["diving48"])}, cfg, seed)
    _json(root / "Diving48_vocab.json", vocab)
    _json(root / "Diving48_train.json", lists["train"])
    _json(root / "Diving48_test.json", lists["test"])
    return {"videos": n, "classes": len(vocab)}


def _vidsitu_annotation(seg: str, verbs: list[str]) -> dict:
    ann = {}
    for k, verb in enumerate(verbs, 1):
        event = {"vid_seg_int": seg, "Verb": verb.split(" ")[0], "VerbID": verb,
                 "Arg_List": {"Arg0": "1", "Scene of the Event": "2"}, "Args": {"Arg0": "a person", "Scene of the Event": "a room"}}
        if k != 3:
            event["EvRel"] = "NoRel"
        ann[f"Ev{k}"] = event
    return ann


def make_vidsitu(root: Path, cfg: dict, seed: int, bad: bool) -> dict:
    verbs = VIDSITU_VERBS[: cfg["num_classes"]]
    rng = np.random.default_rng(seed)
    splits = {"train": ([], []), "valid": ([], [])}
    vinfo = []
    for n in tqdm(range(cfg["segments"]), desc="VidSitu fixtures", unit="segment"):
        seg = f"v_fixture{n:04d}_seg_{10 * n}_{10 * n + 10}"
        split = "valid" if n == 0 else "train"
        events = [verbs[int(c)] for c in rng.integers(0, len(verbs), size=5)]
        segs, anns = splits[split]
        segs.append(seg)
        anns.append(_vidsitu_annotation(seg, events))
        if split == "valid":  # several annotators on validation segments
            anns.append(_vidsitu_annotation(seg, events[:4] + [verbs[0]]))
            anns.append(_vidsitu_annotation(seg, events))
            # the evaluation's 10 verbs per event (vinfo `vbid_lst`): 7 agree with the event, 3 name another verb
            vinfo.append({"vid_seg_int": seg, "vbid_lst": {f"Ev{k}": [ev] * 7 + [verbs[(verbs.index(ev) + 1) % len(verbs)]] * 3
                                                            for k, ev in enumerate(events, 1)}})
        # each 2-second event shows its own verb's motion
        per_event = cfg["frames"] // len(events)
        frames = np.concatenate([_frames(verbs.index(ev), len(verbs), cfg, seed * 7919 + 2000 + 10 * n + k, num_frames=per_event)
                                 for k, ev in enumerate(events)])
        _write(root / "vsitu_video_trimmed_dir" / f"{seg}.mp4", frames, cfg["fps"])
    if bad:
        segs, anns = splits["train"]
        bad_segs = sorted({v.rsplit("_Ev", 1)[0] for v in BAD["vidsitu"]})
        for seg in bad_segs:
            segs.append(seg)
            anns.append(_vidsitu_annotation(seg, [verbs[0]] * 5))
        _bad_videos(root, {k: f"vsitu_video_trimmed_dir/{s}.mp4" for k, s in zip(("missing", "empty", "truncated", "short"), bad_segs)}, cfg, seed)
    for split, (segs, anns) in splits.items():
        _json(root / "vidsitu_annotations" / "split_files" / f"vseg_split_{split}_lb.json", segs)
        _json(root / "vidsitu_annotations" / "vseg_ann_files" / f"vsann_{split}_lb.json", anns)
    _json(root / "vidsitu_annotations" / "vinfo_files" / "vinfo_valid_lb.json", vinfo)
    return {"segments": cfg["segments"], "classes": len(verbs)}


def make_ava(root: Path, cfg: dict, seed: int, bad: bool) -> dict:
    classes = AVA_CLASSES[: cfg["num_classes"]]
    rng = np.random.default_rng(seed)
    seconds = cfg["frames"] // cfg["fps"]
    rows = {"train": [], "val": []}
    excluded = {"train": [], "val": []}
    for n in tqdm(range(cfg["videos"]), desc="AVA fixtures", unit="video"):
        vid = f"fixture{n:04d}"  # AVA ids are 11 characters
        split = "val" if n == 0 else "train"
        for ts in range(FIRST_KEYFRAME, KEYFRAME_OFFSET + seconds):
            for person in range(2):
                x1, y1 = rng.uniform(0, 0.5, size=2).round(3)
                for action in rng.choice(classes, size=2, replace=False):
                    rows[split].append(f"{vid},{ts:04d},{x1:.3f},{y1:.3f},{x1 + 0.4:.3f},{y1 + 0.45:.3f},{action},{person}")
        excluded[split].append(f"{vid},{FIRST_KEYFRAME:04d}")
        _write(root / "videos_15min" / f"{vid}.mp4", _frames(n % len(classes), len(classes), cfg, seed * 7919 + 3000 + n), cfg["fps"])
    rows["train"].append(f"fixture0001,{FIRST_KEYFRAME + 1:04d},0.1,0.1,0.5,0.5,2,0")  # 2: not an evaluated class
    if bad:
        for vid in BAD["ava"]:
            rows["train"].append(f"{vid},{FIRST_KEYFRAME:04d},0.1,0.1,0.5,0.5,{classes[0]},0")
        _bad_videos(root, {k: f"videos_15min/{v}.mp4" for k, v in zip(("missing", "empty", "truncated", "short"), BAD["ava"])}, cfg, seed)
    items = "".join(f'item {{\n  name: "AVA class {i}"\n  id: {i}\n}}\n' for i in sorted(AVA_60_CLASS_IDS))
    write_text(root / "annotations" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt", items)
    for split in ("train", "val"):
        write_text(root / "annotations" / f"ava_{split}_v2.2.csv", "".join(r + "\n" for r in rows[split]))
        write_text(root / "annotations" / f"ava_{split}_excluded_timestamps_v2.2.csv", "".join(r + "\n" for r in excluded[split]))
    return {"videos": cfg["videos"], "classes": len(classes)}


MAKERS = {"ssv2": make_ssv2, "ssv1": make_ssv1, "diving48": make_diving48, "vidsitu": make_vidsitu, "ava": make_ava}


SIZE_KEYS = {"ssv2": ("num_classes", "videos_per_class"), "ssv1": ("num_classes", "videos_per_class"),
             "diving48": ("num_classes", "videos_per_class"), "vidsitu": ("num_classes", "segments"),
             "ava": ("num_classes", "videos")}


def make(dataset: str, root: str | Path, cfg: dict, seed: int = 0) -> dict:
    """Generate one fixture dataset under `root` with the sizes `cfg` (a profile's `fixtures.<dataset>`:
    `frames`, `height`, `width`, `fps` and the counts of SIZE_KEYS; `bad_files` defaults to true)."""
    missing = [k for k in ("frames", "height", "width", "fps", *SIZE_KEYS[dataset]) if k not in (cfg or {})]
    if missing:
        raise ValueError(f"fixtures.{dataset}: missing size(s) {', '.join(missing)}")
    cfg = {"bad_files": True, **cfg}
    return MAKERS[dataset](Path(root), cfg, seed, bool(cfg["bad_files"]))
