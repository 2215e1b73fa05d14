"""paperkit: reproduce and teach MODL + KNNS (Many-to-One Distribution Learning and K-Nearest
Neighbor Smoothing, AAAI 2021) for thoracic disease identification.

Modules, one job each:

- :mod:`paperkit.config`     profiles (every hyper-parameter) and validated overrides
- :mod:`paperkit.paths`      where every artifact lives
- :mod:`paperkit.artifacts`  atomic writes, content-hashed manifests (resume)
- :mod:`paperkit.orchestration.runner`     executes the notebooks with papermill
- :mod:`paperkit.data`       embedded benchmark, real-dataset loaders, the image cache
- :mod:`paperkit.models`     timm backbones with GAP or PCAM heads
- :mod:`paperkit.method.losses`     BCE, MODL (eq. 2), KNNS (eq. 4)
- :mod:`paperkit.method.soft_labels`, :mod:`paperkit.method.knn`  the soft label distribution and neighbour pools
- :mod:`paperkit.training.loop`      the one training loop
- :mod:`paperkit.evaluation.metrics`, :mod:`paperkit.evaluation.report`, :mod:`paperkit.evaluation.figures`, :mod:`paperkit.evaluation.heatmaps`
"""

__version__ = "0.1.0"
