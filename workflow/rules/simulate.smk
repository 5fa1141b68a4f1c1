# ==========================================================================================
# Cells: one job per (sweep, sigma, seed). Its trajectory blocks run on Dask (an in-process
# cluster of `threads` workers, or dask.scheduler_address) and are stored atomically as
# Zarr. params hold only what changes the stored numbers: the cell and the kernel's
# numerics version (a numerics change reruns cells; a fresh clone with copied results does
# not, because the command line is the rule's code and no script mtime is involved).
# ==========================================================================================


rule cell_stamp:
    output:
        stamp=touch(f"{RESULTS}/{{sweep}}/cells/sigma={{sigma}}/seed={{seed}}.zarr.{{hash}}.stamp"),
    wildcard_constraints:
        hash=r"[0-9a-f]{16}",
    localrule: True


rule simulate_cell:
    input:
        stamp=get_cell_stamp,
    output:
        cell=directory(f"{RESULTS}/{{sweep}}/cells/sigma={{sigma}}/seed={{seed}}.zarr"),
    log:
        f"{RESULTS}/{{sweep}}/logs/cells/sigma={{sigma}}/seed={{seed}}.log",
    params:
        spec=get_cell_spec_json,
        numerics=NUMERICS_VERSION,
    threads: get_cell_threads
    resources:
        mem_mb=get_cell_mem_mb,
        runtime=get_cell_runtime,
    shell:
        "{PYTHON:q} -m cq_core run-cell --spec {params.spec:q}"
        " --numerics-version {params.numerics:q} --output {output.cell:q}"
        " --threads {threads} {DASK_OPTIONS} 2> {log:q}"
