"""Reports: the paper's tables beside ours (:mod:`.tables`), how a table is written (:mod:`.format`),
the references' tables of notebook 02 (:mod:`.references`) and the results index REPORT.md
(:mod:`.index`). The public names are re-exported here."""
from paperkit.report.format import ReportTable, write_table
from paperkit.report.index import describe_hardware, git_commit, write_report_index
from paperkit.report.references import ensemble_headroom, reference_auc_table
from paperkit.report.tables import (GOOGLE_RELABEL_FINDINGS, PAPER_ROW_ALIASES, ablation_table, gain_table,
                                    k_sweep_table, localisation_table, table1_nih, table2_chexpert, table3_ensembles,
                                    table_google_relabel)

__all__ = ["GOOGLE_RELABEL_FINDINGS", "PAPER_ROW_ALIASES", "ReportTable", "ablation_table", "describe_hardware",
           "ensemble_headroom", "gain_table", "git_commit", "k_sweep_table", "localisation_table",
           "reference_auc_table", "table1_nih", "table2_chexpert", "table3_ensembles", "table_google_relabel",
           "write_report_index", "write_table"]
