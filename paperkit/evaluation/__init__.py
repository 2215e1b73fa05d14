"""One evaluation path, arrays in and tables out: per-class AUC, patient-level bootstrap and DeLong
(:mod:`.metrics`, :mod:`.stats`), the seed-mean verdict, the paper's numbers, heatmaps, figures and
the report's tables. It knows nothing of how a model was trained."""
