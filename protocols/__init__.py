"""Evaluation protocols: a pretrained checkpoint in, metrics JSON out (see CONTRIBUTING.md).

`PROTOCOLS` is the one registry: protocol name -> the module run as `python -m <module>`
(`lowshot` is fine-tuning on a low-shot manifest). The evaluation rule and the table renderer
both read it; a table row naming any other protocol renders as "not run".
"""

PROTOCOLS = {
    "linear": "protocols.linear",
    "retrieval": "protocols.retrieval",
    "finetune": "protocols.finetune",
    "lowshot": "protocols.finetune",
    "svm": "protocols.svm",
}
IMPLEMENTED = frozenset(PROTOCOLS)
