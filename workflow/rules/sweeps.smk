# ==========================================================================================
# One job per sweep (cq_core/pipeline/sweep_job.py): `python -m cq_core steps` runs, in one
# process, the sweep's batch when its cells fit one (else its batch jobs, simulate.smk, come
# first), then its summary (merged from the statistics stored with each cell), then every
# figure and table of its analysis.figures. One process per sweep instead of one per batch,
# summary, figure and table: the default run's cost is its physics, not Python start-ups.
#
# The steps are the rule's params: a changed cell, analysis setting or figure setting reruns
# the sweep's job, which then stores only the cells not stored as asked (none, for a figure
# setting), merges the summary again and redraws. Execution settings (threads, dask.*) come
# after --batch-options on the command line, never through params: they never rerun a job.
# Outputs are the batch manifest (when the job runs the batch), the summary's zarr.json (no
# directory() output: Snakemake writes nothing inside a store), then the figures and tables,
# each PNG and table wrapped in report() with its caption from workflow/report/.
# ==========================================================================================


def _report_output(output):
    """A sweep-job output as the rule's output: report()-wrapped when the report shows it."""
    if output.caption is None:
        return output.path
    return report(
        output.path,
        caption=f"../report/{output.caption}",
        category=output.category,
        subcategory=output.subcategory,
        labels=dict(output.labels),
    )


for _sweep in SWEEP_CELLS:
    _job = get_sweep_job(_sweep)

    rule:
        name:
            f"sweep_{_sweep}"
        input:
            **_job.inputs,
        output:
            **{key: _report_output(out) for key, out in _job.outputs.items()},
        log:
            str(layout.sweep_log(RESULTS, _sweep)),
        params:
            sweep=_sweep,  # for the report's captions
            steps=_job.steps,
        threads: _job.threads
        resources:
            mem_mb=_job.mem_mb,
            runtime=_job.runtime,
        shell:
            "{PYTHON:q} -m cq_core steps {params.steps:q}"
            " --batch-options --threads {threads} {DASK_OPTIONS} 2> {log:q}"
