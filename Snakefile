# ==========================================================================================
# cq-sweep: (sigma, seed) sweeps of hybrid classical-quantum dynamics (docs/physics.md)
#
#   snakemake --cores 2                       # run config/config.yaml
#   snakemake --cores 2 --configfile my.yaml  # deep-merged over it
#   snakemake --cores 2 --quiet reason        # Snakemake's full per-job output (debugging)
#
#   snakemake --report results/report.html    # self-contained HTML: figures, tables, config
#
# Data flow: config -> validation -> one job per batch of (sweep, sigma, seed) cells -> Zarr
# stores, one per cell
# -> one summary job per sweep -> results/<sweep>/summary.zarr -> figures and tables
# (results/<sweep>/figures/, results/<sweep>/tables/, results/figures/tradeoff.png). The
# rules only wire; the physics, the analysis and the plots live in the cq_core package
# (python -m cq_core ...).
# ==========================================================================================

from snakemake.utils import min_version, validate

from cq_core.pipeline.config_file import check_config_files, strict_config_file

# ----------------------------------------------------------------------- minimum version
min_version("9.0")


# ------------------------------------------------------------------------- configuration
# the config is data: every config file is read again strictly (duplicate keys, aliases and
# YTE templates refused), then its values are checked (integers, limits, cell sizes), naming
# the key, before anything else runs (cq_core/pipeline/config_file.py)
configfile: strict_config_file("config/config.yaml")


check_config_files(workflow, config)


# ---------------------------------------------------------------------------- validation
# the schema first (types, ranges, unknown keys), then every sweep against the models
# (get_model, check_run on each cell, duplicates, analysis times): `snakemake -n` fails
# on an invalid config with a message naming the key, before any job starts.
validate(config, schema="config/schema.yaml")


# -------------------------------------------------------------------------------- report
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"


from cq_core.pipeline.locks import record_lock_owner, remove_stale_locks
from cq_core.pipeline.analysis_settings import write_analysis_settings


# ------------------------------------------------------------------------- stale locks
# A run killed with SIGKILL leaves Snakemake's lock behind: the next run removes it when its
# owner is provably gone (same host, that process no longer runs), so that the same command
# resumes the sweep without `snakemake --unlock`; locks of a run any of whose processes (or
# jobs) still runs, and of unknown owners, are kept (cq_core/pipeline/locks.py).
remove_stale_locks(workflow)


onstart:
    record_lock_owner(workflow)
    # the analysis settings the cell jobs compute each cell's statistics with, as they store
    # it (not an input of those jobs: a changed setting reruns the summaries, not the cells)
    for sweep, analysis in SWEEP_ANALYSIS.items():
        write_analysis_settings(Path(RESULTS) / sweep, analysis)
    start_console()


SWEEP_CELLS, SWEEP_ANALYSIS = check_sweeps(config)
SWEEP_BATCHES = plan_batches(SWEEP_CELLS)
MISSING_STORES = find_missing_stores(SWEEP_BATCHES)


# ------------------------------------------------------------------------------ console
# The default profile silences Snakemake's per-job blocks (quiet: rules, progress, host,
# reason); the workflow says instead which sweeps and cells run, cells done of total and
# trajectory-steps/s while they run, and where the results are, or which job failed and
# where its log is (cq_core/pipeline/progress.py). A dry run prints the same first lines
# (`snakemake -n --quiet rules` shows Snakemake's job table as well).
from snakemake.logging import logger
from snakemake.settings.enums import Quietness

from cq_core.pipeline.progress import Console, plan_sweeps, start_lines

CONSOLE = Console(RESULTS, logger.info)

if workflow.output_settings.dryrun and workflow.is_main_process:
    for line in start_lines(plan_sweeps(SWEEP_CELLS, RESULTS), RESULTS):
        logger.info(line)


def start_console():
    """onstart: the plan of this run (stores read now), then progress and failed jobs."""
    terse = Quietness.RULES in workflow.output_settings.quiet
    CONSOLE.start(plan_sweeps(SWEEP_CELLS, RESULTS), logger, terse=terse)


onsuccess:
    CONSOLE.finish(get_all_figures())


onerror:
    CONSOLE.fail()


# --------------------------------------------------------------------------------- rules
include: "workflow/rules/simulate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/sweeps.smk"


# -------------------------------------------------------------------------------- target
# every summary, figure and table; get_all_figures also checks the figure keys against the
# sweeps (unknown sweep or figure, missing mean-field twin), so `snakemake -n` fails on them.
rule all:
    default_target: True
    input:
        get_all_manifests(),
        get_all_summaries(),
        get_all_figures(),
