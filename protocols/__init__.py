"""Evaluation protocols: a pretrained checkpoint in, metrics JSON out (see CONTRIBUTING.md).

`PROTOCOLS` is the one registry: protocol name -> the module run as `python -m <module>`
(`lowshot` is fine-tuning on a low-shot manifest; `pretext` reads the pretraining's log.csv). The
evaluation rules and the table renderer read it; a table row naming any other protocol renders as
"not run".
"""

PROTOCOLS = {
    "linear": "protocols.linear",
    "retrieval": "protocols.retrieval",
    "finetune": "protocols.finetune",
    "lowshot": "protocols.finetune",
    "svm": "protocols.svm",
    "pretext": "protocols.pretext",  # CMD Table 7: pretext accuracies logged during pretraining
    "finetune_vf": "protocols.finetune_vf",  # MaCLR Table 2 "V+F": Visual and Motion pathways fine-tuned, late fusion
    "joint_train": "protocols.joint_train",  # HCML Tables 2, 3, 6: training with labels from scratch (Eq. 5)
    "efficacy": "protocols.efficacy",  # HCML Table 1: efficacy scores of one level's motion features
    "knn_motion": "protocols.knn_motion",  # HCML Table 5: kNN on one level's motion features
    "detection": "protocols.detection",  # MaCLR Table 5: AVA action detection, frame-mAP (reads <manifest>.boxes.csv)
}
IMPLEMENTED = frozenset(PROTOCOLS)
# Protocols that also evaluate a checkpoint's `extra_encoders` (their inputs' caches are the
# job's inputs too), and those that read the pretraining's log instead of any input.
READS_EXTRA_ENCODERS = frozenset({"retrieval", "finetune_vf"})
READS_LOG = frozenset({"pretext"})
# Protocols that read the evaluated boxes beside the manifest (`<evaluation set>.boxes.csv`, AVA).
READS_BOXES = frozenset({"detection"})
# Protocols that fine-tune, so a checkpoint's method may train its own task there (CMD Table 6:
# PretrainMethod.finetune_task) and the job needs that task's inputs (`finetune_inputs`).
FINE_TUNES = frozenset(p for p, module in PROTOCOLS.items() if module == "protocols.finetune")
