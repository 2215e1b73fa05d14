"""Reports: the paper's tables beside ours, the ablation tables, how a table is written, and the
results index REPORT.md. The public names are re-exported here.

Every table is built from a :class:`paperkit.evaluate.ComparisonResult` (ours) and
:mod:`paperkit.paper_numbers` (the paper's), so no number is typed in by hand. A table has two
views: ``tidy`` (one row per model and class, numeric, written as CSV for scripts) and ``display``
(what a reader compares), written as Markdown and LaTeX. File stems say what a file holds.

- :mod:`.compare`: what a table takes from a comparison, and which paper row a model is compared with
- :mod:`.tables`: Tables 1 and 2 (per-class AUC) and the Google relabel table
- :mod:`.ensembles`: Table 3 (single model vs ensembles, with their cost)
- :mod:`.ablation`: ablation sweeps and per-seed gain tables
- :mod:`.localisation`: heatmap localisation of two models, paired
- :mod:`.format`: :class:`ReportTable` (CSV, Markdown, LaTeX) and :func:`write_table`
- :mod:`.index`: REPORT.md (:func:`write_report_index`)
"""
from paperkit.report.ablation import ablation_table, gain_table, k_sweep_table
from paperkit.report.compare import PAPER_ROW_ALIASES
from paperkit.report.ensembles import table3_ensembles
from paperkit.report.format import ReportTable, write_table
from paperkit.report.index import describe_hardware, git_commit, write_report_index
from paperkit.report.localisation import localisation_table
from paperkit.report.references import ensemble_headroom, reference_auc_table
from paperkit.report.tables import GOOGLE_RELABEL_FINDINGS, table1_nih, table2_chexpert, table_google_relabel

__all__ = ["GOOGLE_RELABEL_FINDINGS", "PAPER_ROW_ALIASES", "ReportTable", "ablation_table", "describe_hardware",
           "ensemble_headroom", "gain_table", "git_commit", "k_sweep_table", "localisation_table",
           "reference_auc_table", "table1_nih", "table2_chexpert", "table3_ensembles", "table_google_relabel",
           "write_report_index", "write_table"]
