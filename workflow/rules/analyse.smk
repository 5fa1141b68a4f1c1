# ==========================================================================================
# Aggregates: one summary per sweep, read lazily from its cells with cq_core.open_sweep; its
# inputs are the sweep's batch manifests (which list the cells). The output is named by the
# store's zarr.json, not as a directory(): Snakemake then writes nothing inside the store.
# params hold only the summary settings (time slices, bins, fit window): changing them
# reruns the summaries and nothing else; a new cell reruns its sweep's summary (input).
# ==========================================================================================


rule summarise_sweep:
    input:
        manifests=get_sweep_manifests,
    output:
        summary=f"{RESULTS}/{{sweep}}/summary.zarr/zarr.json",
    log:
        f"{RESULTS}/{{sweep}}/logs/summary.log",
    params:
        analysis=get_analysis_json,
    threads: 1
    resources:
        mem_mb=get_summary_mem_mb,
        runtime=10,
    shell:
        "{PYTHON:q} -m cq_core summarise --sweep-dir {RESULTS:q}/{wildcards.sweep:q}"
        " --analysis {params.analysis:q} --output {output.summary:q} --threads {threads}"
        " {input.manifests:q} 2> {log:q}"
