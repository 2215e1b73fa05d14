"""Every training run a profile will do, with an estimated time: ``python -m paperkit plan``.

:func:`planned_runs` lists the runs the notebooks request, in the order they request them and
under the folders they train into, from the profile alone (the same :class:`~paperkit.pipeline.specs.RunSpec`
the notebooks build, soft labels and pools named by what makes them): the references of notebook 02,
B and B+MODL+KNNS per seed in 05, the variants, the K sweep and the teaching ablations of 06 (gated
as 06 gates them), and nothing new in 07 and 08, which reuse 02 and 05. A test checks that the smoke
profile's end-to-end run creates exactly these folders, so the plan cannot drift from the notebooks
unnoticed.

:func:`estimate` puts a time on each run from throughput rates: measured by :func:`probe` (a few
training steps of each architecture at the profile's crop and batch size on the device it will
train on), or, where no probe can run, the README's rates measured on one H200 (said so in the
plan). Faithful KNNS forwards the K neighbours with the anchors, so its step costs a measured
(K+1)-fold batch; efficient KNNS costs 1.05x a BCE step. Validation (every epoch), the memory
bank's warm start and the memorisation monitor add inference time. Not included: notebook kernel
start, evaluation (bootstrap CIs), figures and test-set predictions.

- :mod:`.requests`: :func:`planned_runs`, the runs and soft-label sets in request order
- :mod:`.sizes`: :class:`DataSize` of each dataset key (counted, a benchmark manifest, or nominal)
- :mod:`.rates`: :class:`Rates` and the README's H200 rates (:func:`nominal_rates`)
- :mod:`.measure`: the throughput probe (:func:`probe_device`, :func:`probe`)
- :mod:`.build`: :func:`estimate`, :func:`build_plan`, :func:`make_plan`
- :mod:`.report`: the plan as text (:func:`format_plan`), ``plan.json`` and :func:`plan_vs_measured`
(``python -m paperkit plan`` is :mod:`paperkit.orchestration.plan_cli`.)
"""

from paperkit.pipeline.plan.build import (
    EFFICIENT_FACTOR,
    NOT_INCLUDED,
    WORKER_START_S,
    DataStep,
    Plan,
    build_plan,
    estimate,
    make_plan,
    makespan,
)
from paperkit.pipeline.plan.measure import (
    CPU_PROBE_MAX_PARAMS,
    N_CLASSES,
    PROBE_BUDGET_S,
    parameter_count,
    probe,
    probe_device,
)
from paperkit.pipeline.plan.rates import (
    H200_CROP,
    H200_FAITHFUL,
    H200_INFERENCE,
    H200_TRAIN,
    H200_WARMUP,
    Rates,
    nominal_rates,
)
from paperkit.pipeline.plan.report import (
    PLAN_FILE,
    format_plan,
    format_seconds,
    plan_vs_measured,
    summary_line,
    write_plan,
)
from paperkit.pipeline.plan.requests import PlannedRun, SoftLabelSet, planned_runs
from paperkit.pipeline.plan.sizes import DataSize, data_sizes, nominal_size

__all__ = [
    "CPU_PROBE_MAX_PARAMS",
    "EFFICIENT_FACTOR",
    "H200_CROP",
    "H200_FAITHFUL",
    "H200_INFERENCE",
    "H200_TRAIN",
    "H200_WARMUP",
    "N_CLASSES",
    "NOT_INCLUDED",
    "PLAN_FILE",
    "PROBE_BUDGET_S",
    "WORKER_START_S",
    "DataSize",
    "DataStep",
    "Plan",
    "PlannedRun",
    "Rates",
    "SoftLabelSet",
    "build_plan",
    "data_sizes",
    "estimate",
    "format_plan",
    "format_seconds",
    "make_plan",
    "makespan",
    "nominal_rates",
    "nominal_size",
    "parameter_count",
    "plan_vs_measured",
    "planned_runs",
    "probe",
    "probe_device",
    "summary_line",
    "write_plan",
]
