# Compute claims (#params, FLOPs) of the papers, counted with fvcore on the suite's networks.
# Scale-independent: the counts are of the papers' full-size networks at the papers' inputs.
rule compute:
    input:
        claims="tables/compute_claims.yaml",
        code=["tables/compute.py", "methods/backbones/registry.py", "methods/backbones/resnet.py",
              "methods/backbones/hcml.py", "methods/backbones/others.py"],
    output:
        md="tables/compute.md",
        csv="tables/compute.csv",
        results="results/compute/compute.csv",
        calibration="results/compute/calibration.csv",
        sweep="results/compute/hcml_pmb_sweep.csv",
    threads: 2  # at every scale, as the counts are scale-independent
    resources:
        **{**rule_resources("compute"), "cpus_per_task": 2},
    shell:
        "OMP_NUM_THREADS={threads} {PY} -m tables.compute --claims {input.claims} "
        "--md {output.md} --csv {output.csv} --results {output.results}"
