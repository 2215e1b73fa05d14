"""Reports: the paper's tables beside ours, the ablation tables and how a table is written (REPORT.md,
the index of them all, is :mod:`paperkit.orchestration.report_index`). The public names are re-exported here.

Every table is built from a :class:`paperkit.evaluation.metrics.ComparisonResult` (ours) and
:mod:`paperkit.evaluation.paper_numbers` (the paper's), so no number is typed in by hand. A table has two
views: ``tidy`` (one row per model and class, numeric, written as CSV for scripts) and ``display``
(what a reader compares), written as Markdown and LaTeX. File stems say what a file holds.

- :mod:`.compare`: what a table takes from a comparison, and which paper row a model is compared with
- :mod:`.tables`: Tables 1 and 2 (per-class AUC) and the Google relabel table
- :mod:`.ensembles`: Table 3 (single model vs ensembles, with their cost)
- :mod:`.ablation`: ablation sweeps and per-seed gain tables
- :mod:`.lab`: the label-noise lab's table and settings grid (notebook 09)
- :mod:`.localisation`: heatmap localisation of two models, paired
- :mod:`.format`: :class:`ReportTable` (CSV, Markdown, LaTeX) and :func:`write_table`
"""
from paperkit.evaluation.report.ablation import ablation_table, gain_table, k_sweep_table
from paperkit.evaluation.report.compare import PAPER_ROW_ALIASES
from paperkit.evaluation.report.ensembles import table3_ensembles
from paperkit.evaluation.report.format import ReportTable, write_table
from paperkit.evaluation.report.lab import lab_grid_table, lab_table
from paperkit.evaluation.report.localisation import localisation_table
from paperkit.evaluation.report.references import ensemble_headroom, reference_auc_table
from paperkit.evaluation.report.tables import GOOGLE_RELABEL_FINDINGS, table1_nih, table2_chexpert, table_google_relabel

__all__ = [
    "GOOGLE_RELABEL_FINDINGS",
    "PAPER_ROW_ALIASES",
    "ReportTable",
    "ablation_table",
    "ensemble_headroom",
    "gain_table",
    "k_sweep_table",
    "lab_grid_table",
    "lab_table",
    "localisation_table",
    "reference_auc_table",
    "table1_nih",
    "table2_chexpert",
    "table3_ensembles",
    "table_google_relabel",
    "write_table",
]
