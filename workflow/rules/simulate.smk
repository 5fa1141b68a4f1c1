# ==========================================================================================
# Cells, in batches: a sweep whose cells fit one batch (batch.cells_per_job) runs it in its
# sweep job (sweeps.smk); a bigger sweep has one job per batch here. Either way a batch is
# `python -m cq_core run-batch`, which
# stores every cell of its batch that is missing or holds another cell, in one process
# (cq_core/pipeline/batch.py), and writes the batch's manifest last. The manifest's name
# holds the digest of its cells' hashes, and params hold the cells and the numerics version:
# a changed cell, a numerics change or results copied from another config ask for another
# manifest, while execution settings (dask.*, batch.dask_min_trajectory_steps) never rerun
# anything. No directory() outputs: Snakemake writes nothing inside a store.
# ==========================================================================================


rule batch_stamp:
    output:
        stamp=touch(f"{RESULTS}/{{sweep}}/batches/stamp"),
    localrule: True


rule simulate_batch:
    wildcard_constraints:
        # the sweeps with more than one batch (the others run theirs in their sweep job)
        sweep="|".join(re.escape(s) for s in SWEEP_CELLS if s not in get_single_batch_sweeps())
        or "(?!)",
    input:
        stamp=get_batch_stamp,
    output:
        manifest=f"{RESULTS}/{{sweep}}/batches/{{batch}}-{{digest}}.json",
    log:
        f"{RESULTS}/{{sweep}}/logs/batches/{{batch}}-{{digest}}.log",
    params:
        cells=get_batch_cells,
        numerics=NUMERICS_VERSION,
    threads: get_batch_threads
    resources:
        mem_mb=get_batch_mem_mb,
        runtime=get_batch_runtime,
    shell:
        "{PYTHON:q} -m cq_core run-batch --sweep-dir {RESULTS:q}/{wildcards.sweep:q}"
        " --cells {params.cells:q} --numerics-version {params.numerics:q}"
        " --manifest {output.manifest:q} --threads {threads} {DASK_OPTIONS} 2> {log:q}"
