# ==========================================================================================
# Figures across sweeps, and the settings of each sweep's figures. A sweep's own figures and
# tables (analysis.figures) are drawn in its sweep job (sweeps.smk), from stored cells and its
# summary only, never by re-simulating: PNGs (for the README and the HTML report) and PDFs in
# results/<sweep>/figures/, CSVs in results/<sweep>/tables/. The one trade-off figure spans
# the sweeps figures.tradeoff names: its own job, whose params are figure settings only.
# ==========================================================================================

from cq_core.pipeline.phase_space_figure import check_phase_space


rule figure_tradeoff:
    input:
        summaries=get_tradeoff_summaries(),
    output:
        png=report(
            f"{RESULTS}/figures/tradeoff.png",
            caption="../report/tradeoff.rst",
            category="Decoherence",
            subcategory="trade-off Γ·D2 ≥ |Δf|²/16",
            labels={"sweeps": ", ".join(config["figures"]["tradeoff"])},
        ),
        pdf=f"{RESULTS}/figures/tradeoff.pdf",
    log:
        f"{RESULTS}/logs/figures/tradeoff.log",
    params:
        dpi=config["figures"]["dpi"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{PYTHON:q} -m cq_core figure tradeoff {input.summaries:q}"
        " --dpi {params.dpi} --output {output.png:q} {output.pdf:q} 2> {log:q}"


@functools.cache
def _phase_space_settings(sweep):
    """The checked analysis.phase_space settings of a sweep that lists the phase_space figure
    (cq_core/pipeline/phase_space_figure.py): invalid ones fail the dry run naming the key."""
    figures = config["sweeps"][sweep]["analysis"]["figures"]
    key = f"sweeps.{sweep}.analysis.figures[{figures.index('phase_space')}]"
    model = next(iter(SWEEP_CELLS[sweep].values())).build_model()
    return check_phase_space(sweep, config["sweeps"][sweep], model, key)


def get_phase_space_settings(wildcards):
    """{sigma, grid, times} of the sweep's phase_space figure (the rule's params).

    PNGs only (no PDFs, unlike the other figures): the panels are images either way, and
    each further file costs a full draw of some 30 axes."""
    return _phase_space_settings(wildcards.sweep).to_params()
