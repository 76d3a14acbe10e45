# The suite's DAG: raw data -> manifests -> transcodes -> motion -> pretraining -> evaluation -> tables.
#
#   snakemake tables/maclr_table1.md --cores               (smoke scale, generated fixture data)
#   snakemake tables/maclr_table1.md --cores --config scale=full data_root=/data
#
# Every rule file of datasets/, methods/<m>/, protocols/ and tables/ is included below, so a new
# method is one folder with its rules.smk and nothing here changes.
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from core.config import load_scale

configfile: "config/config.yaml"

SCALE = str(config.get("scale", "smoke"))
PROFILE = load_scale(SCALE)
RESULTS = f"results/{SCALE}"
DATA_ROOT = config.get("data_root") or None

wildcard_constraints:
    scale=r"[a-z0-9_]+",
    dataset=r"[a-z0-9_]+",
    method=r"[a-z0-9_]+",
    variant=r"[a-z0-9_]+",
    pretrain=r"[a-z0-9_]+",
    protocol=r"[a-z0-9_]+",
    evaldata=r"[a-z0-9_]+",
    paper=r"[a-z0-9]+",
    table=r"[a-z0-9_]+",


def _rule_files():
    base = Path(workflow.basedir)
    files = sorted((base / "datasets").glob("*.smk"))
    files += sorted((base / "methods").glob("*/rules.smk"))
    files += sorted((base / "protocols").glob("*.smk"))
    files += sorted((base / "tables").glob("*.smk"))
    return [f for f in files if f.exists()]


for _rules in _rule_files():
    include: str(_rules)
