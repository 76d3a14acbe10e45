# The suite's DAG: raw data -> manifests -> transcodes -> motion -> pretraining -> evaluation -> tables.
#
#   snakemake tables/maclr_table1.md --cores               (smoke scale, generated fixture data)
#   snakemake tables/maclr_table1.md --cores --config scale=full data_root=/data
#
# core/common.smk (interpreter, scale profile, paths, dataset roots) is included first; then
# every rule file of datasets/, methods/, protocols/ and tables/, each relying only on the common
# include. One pretraining rule (methods/rules.smk) serves every method folder, so a new method
# is one folder and nothing here changes.
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)

from core.failed_logs import show_failed_logs

configfile: "config/config.yaml"

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


include: "core/common.smk"


def _rule_files():
    base = Path(workflow.basedir)
    files = []
    for part in ("datasets", "methods", "protocols", "tables"):
        files += sorted((base / part).glob("*.smk"))
    return files


for _rules in _rule_files():
    include: str(_rules)


onerror:
    # Every rule sends stderr to its log: show the failing jobs' logs, where the clear message is.
    show_failed_logs(log)
