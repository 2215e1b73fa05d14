"""paperkit: reproduce and teach MODL + KNNS (Many-to-One Distribution Learning and K-Nearest
Neighbor Smoothing, AAAI 2021) for thoracic disease identification.

Layers, lowest first; each imports only from those before it (``tests/test_layers.py``):

- foundation: :mod:`paperkit.config` (profiles), :mod:`paperkit.paths`, :mod:`paperkit.artifacts`
  (atomic writes, content-hashed steps), :mod:`paperkit.runtime`, :mod:`paperkit.progress`
- :mod:`paperkit.data`        embedded benchmark, real-dataset loaders, the image cache
- :mod:`paperkit.models`      timm backbones with GAP or PCAM heads
- :mod:`paperkit.evaluation`  per-class AUC, bootstrap CIs, verdict, figures, report tables
- :mod:`paperkit.method`      BCE, MODL (eq. 2), KNNS (eq. 4), soft labels, neighbour pools, the lab's losses
- :mod:`paperkit.training`    the one training loop (eq. 1) and its machinery
- :mod:`paperkit.pipeline`    the resumable steps the notebooks call, run specs, ablations, the plan
- :mod:`paperkit.orchestration`  the runner (papermill), preflight, weights, REPORT.md, the command line
- :mod:`paperkit.notebook`    a notebook's first cell
"""

__version__ = "0.1.0"
