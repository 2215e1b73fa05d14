"""Running the notebooks: the runner (papermill), preflight checks, ImageNet weights, REPORT.md's
index and the ``python -m paperkit`` command line."""
