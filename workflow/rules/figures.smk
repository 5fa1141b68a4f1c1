# ==========================================================================================
# Figures and tables (docs/physics.md): drawn from stored cells and summaries only, never by
# re-simulating. Each sweep's analysis.figures picks its figures; figures.tradeoff names the
# sweeps of the one trade-off figure. params hold only figure settings (config["figures"];
# the phase_space figure also its sweep's analysis.phase_space), so changing a figure setting
# reruns figure jobs and nothing upstream. PNGs (for the README and the HTML report) and PDFs
# land in results/<sweep>/figures/, CSVs in results/<sweep>/tables/; the PNGs and tables are
# wrapped in report() with the captions of workflow/report/. The phase_space figure solves
# the master equation in its job (seconds at its default grid) beside the stored cells.
# ==========================================================================================

from cq_core.pipeline.phase_space_figure import check_phase_space


rule figure_trajectories:
    input:
        cells=get_sweep_manifests,
        mean_field_cells=get_mean_field_manifests,
    output:
        png=report(
            f"{RESULTS}/{{sweep}}/figures/trajectories.png",
            caption="../report/trajectories.rst",
            category="Trajectories",
            subcategory="seed Fig. 1: realisations",
            labels={"sweep": "{sweep}", "figure": "x-y plane, Bloch sphere, <σz>(t)"},
        ),
        pdf=f"{RESULTS}/{{sweep}}/figures/trajectories.pdf",
    log:
        f"{RESULTS}/{{sweep}}/logs/figures/trajectories.log",
    params:
        realisations=config["figures"]["realisations"],
        dpi=config["figures"]["dpi"],
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    shell:
        "{PYTHON:q} -m cq_core figure trajectories --cells {input.cells:q}"
        " --mean-field-cells {input.mean_field_cells:q} --realisations {params.realisations}"
        " --dpi {params.dpi} --output {output.png:q} {output.pdf:q} 2> {log:q}"


rule figure_mean_field:
    input:
        cells=get_sweep_manifests,
        mean_field_cells=get_mean_field_manifests,
    output:
        png=report(
            f"{RESULTS}/{{sweep}}/figures/mean_field.png",
            caption="../report/mean_field.rst",
            category="Trajectories",
            subcategory="realisations vs. mean field",
            labels={"sweep": "{sweep}", "figure": "phase space, Bloch sphere, <σz>(t)"},
        ),
        pdf=f"{RESULTS}/{{sweep}}/figures/mean_field.pdf",
    log:
        f"{RESULTS}/{{sweep}}/logs/figures/mean_field.log",
    params:
        realisations=config["figures"]["realisations"],
        dpi=config["figures"]["dpi"],
    threads: 1
    resources:
        mem_mb=1500,
        runtime=10,
    shell:
        "{PYTHON:q} -m cq_core figure mean_field --cells {input.cells:q}"
        " --mean-field-cells {input.mean_field_cells:q} --realisations {params.realisations}"
        " --dpi {params.dpi} --output {output.png:q} {output.pdf:q} 2> {log:q}"


rule figure_histograms:
    input:
        summary=rules.summarise_sweep.output.summary,
    output:
        png=report(
            f"{RESULTS}/{{sweep}}/figures/histograms.png",
            caption="../report/histograms.rst",
            category="Histograms",
            subcategory="seed Fig. 2: <σz> densities",
            labels={"sweep": "{sweep}", "figure": "one panel per σ"},
        ),
        pdf=f"{RESULTS}/{{sweep}}/figures/histograms.pdf",
    log:
        f"{RESULTS}/{{sweep}}/logs/figures/histograms.log",
    params:
        dpi=config["figures"]["dpi"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{PYTHON:q} -m cq_core figure histograms --summary {input.summary:q}"
        " --dpi {params.dpi} --output {output.png:q} {output.pdf:q} 2> {log:q}"


rule figure_decoherence:
    input:
        summary=rules.summarise_sweep.output.summary,
    output:
        png=report(
            f"{RESULTS}/{{sweep}}/figures/{{sweep}}_decoherence.png",
            caption="../report/decoherence.rst",
            category="Decoherence",
            subcategory="C(t) and Γ(σ) per sweep",
            labels={"sweep": "{sweep}", "figure": "C(t) per σ, fitted Γ(σ)"},
        ),
        pdf=f"{RESULTS}/{{sweep}}/figures/{{sweep}}_decoherence.pdf",
    log:
        f"{RESULTS}/{{sweep}}/logs/figures/decoherence.log",
    params:
        dpi=config["figures"]["dpi"],
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{PYTHON:q} -m cq_core figure decoherence --summary {input.summary:q}"
        " --dpi {params.dpi} --output {output.png:q} {output.pdf:q} 2> {log:q}"


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


rule table_born:
    input:
        summary=rules.summarise_sweep.output.summary,
    output:
        csv=report(
            f"{RESULTS}/{{sweep}}/tables/born.csv",
            caption="../report/born_table.rst",
            category="Born rule",
            subcategory="Born rule and martingale per σ",
            labels={"sweep": "{sweep}", "format": "raw CSV"},
        ),
        html=report(
            f"{RESULTS}/{{sweep}}/tables/born.html",
            caption="../report/born_table.rst",
            category="Born rule",
            subcategory="Born rule and martingale per σ",
            labels={"sweep": "{sweep}", "format": "HTML table"},
        ),
    log:
        f"{RESULTS}/{{sweep}}/logs/tables/born.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "{PYTHON:q} -m cq_core table born --summary {input.summary:q}"
        " --output {output.csv:q} --html {output.html:q} 2> {log:q}"


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


rule figure_phase_space:
    input:
        cells=get_sweep_manifests,
    output:
        png=report(
            f"{RESULTS}/{{sweep}}/figures/phase_space.png",
            caption="../report/phase_space.rst",
            category="Phase space",
            subcategory="master equation beside the trajectories",
            labels={"sweep": "{sweep}", "figure": "ϱ_LL, ϱ_RR, |ϱ_LR| on (q, p)"},
        ),
        marginals_png=report(
            f"{RESULTS}/{{sweep}}/figures/phase_space_marginals.png",
            caption="../report/phase_space.rst",
            category="Phase space",
            subcategory="master equation beside the trajectories",
            labels={"sweep": "{sweep}", "figure": "q and p marginals of ϱ_LL, ϱ_RR"},
        ),
    log:
        f"{RESULTS}/{{sweep}}/logs/figures/phase_space.log",
    params:
        settings=get_phase_space_settings,
        dpi=config["figures"]["dpi"],
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "{PYTHON:q} -m cq_core figure phase_space --cells {input.cells:q}"
        " --sigma {params.settings[sigma]} --grid {params.settings[grid]}"
        " --times {params.settings[times]} --dpi {params.dpi}"
        " --output {output.png:q} --marginals-output {output.marginals_png:q} 2> {log:q}"
