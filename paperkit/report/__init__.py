"""Reports: the paper's tables beside ours (:mod:`.tables`), how a table is written (:mod:`.format`),
and the results index REPORT.md (:mod:`.index`). The public names are re-exported here."""
from paperkit.report.format import ReportTable, write_table
from paperkit.report.index import describe_hardware, git_commit, write_report_index
from paperkit.report.tables import (GOOGLE_RELABEL_FINDINGS, PAPER_ROW_ALIASES, ablation_table, gain_table,
                                    k_sweep_table, localisation_table, table1_nih, table2_chexpert, table3_ensembles,
                                    table_google_relabel)

__all__ = ["GOOGLE_RELABEL_FINDINGS", "PAPER_ROW_ALIASES", "ReportTable", "ablation_table", "describe_hardware",
           "gain_table", "git_commit", "k_sweep_table", "localisation_table", "table1_nih", "table2_chexpert",
           "table3_ensembles", "table_google_relabel", "write_report_index", "write_table"]
