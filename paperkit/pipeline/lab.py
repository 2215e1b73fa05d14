"""The label-noise lab: the field's methods beside MODL+KNNS, on the benchmark that knows every clean label.

Per layout and label-noise level (the profile's ``noise``, the measured rates, and each of
``lab_noise_sweep``, e.g. none and twice them), every method trains the target on the same images, seeds,
schedule and batch order as B, and is scored on the clean test labels against B and the clean-label
ceiling: its gain, and the share of the noise's cost it wins back, with the verdict's seeds x
patients bootstrap CIs (:func:`paperkit.evaluation.verdict.seed_mean_gain`), on the verdict's test images
(:mod:`paperkit.pipeline.scoring`) and at the verdict's epoch (the profile's ``score_epoch``).

The rules that make the comparison fair:

- a method is a classification loss registered in :mod:`paperkit.method.noisy_losses` (the
  profile's ``lab_methods``, a reader's own included), trained in the one loop in place of BCE, or
  the paper's B+MODL+KNNS;
- its one setting is chosen before any test score is read: on the first seed every value of the
  grid registered with it (B+MODL+KNNS: λ = γ in ``{λ} ∪ lambda_sweep``) is trained, and the value
  with the best mined-label validation AUC (the score that chooses every run's epoch) is kept for
  the other seeds. The grid table gives each value's validation AUC, and the first seed's test AUC
  at the authors' default;
- methods that read soft labels (``kd``, B+MODL+KNNS) are taught by the profile's references
  trained at that noise level;
- the ceiling (the target trained on the clean labels) is the same run at every noise level: its
  training labels do not depend on the noise;
- every seed of the profile at its own noise level, the first seed at the others (their rows say so).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from paperkit.config import Profile
from paperkit.evaluation.comparison_cache import cached_headline_gain
from paperkit.evaluation.verdict import SeedMeanGain, mean_auc
from paperkit.method.noisy_losses import get_method
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.pipeline import scoring, sections
from paperkit.pipeline.ceiling import CEILING
from paperkit.pipeline.experiment import RunRequest
from paperkit.pipeline.specs import Pools, SoftLabels, teacher_changes

#: The paper's method's row.
PAPER_METHOD = "B+MODL+KNNS"


@dataclass(frozen=True)
class LabMethod:
    """One row of the lab: a registered L_cls trained as B, or the paper's B+MODL+KNNS; its grid and default."""

    name: str
    grid: tuple[float | None, ...]  # values tried on the first seed; (None,): the method takes no setting
    default: float | None  # the authors' value

    def request(self, cfg: Profile, data: Any, soft: SoftLabels, pools: Pools, seed: int,
                value: float | None) -> RunRequest:
        """This method's run on ``seed`` with its setting at ``value``."""
        if self.name == PAPER_METHOD:
            return RunRequest(data, cfg.target_arch, seed, PAPER_METHOD, soft, pools, changes=teacher_changes(value))
        changes: dict[str, Any] = {"method": self.name}
        if value is not None:
            changes["method_param"] = value
        return RunRequest(data, cfg.target_arch, seed, "B", soft if get_method(self.name).needs_soft else None,
                          changes=changes)


def lab_methods(cfg: Profile) -> list[LabMethod]:
    """The profile's ``lab_methods`` (registered names: an unknown one raises, naming those registered),
    then the paper's method."""
    out = []
    for name in cfg.lab_methods:
        method = get_method(name)
        grid = (None,) if method.default is None else tuple(sorted({*method.grid, method.default}))
        out.append(LabMethod(name, grid, method.default))
    return [*out, LabMethod(PAPER_METHOD, tuple(sorted({cfg.lambda_modl, *cfg.lambda_sweep})), cfg.lambda_modl)]


def noise_levels(cfg: Profile) -> list[float]:
    """The lab's noise levels: the profile's first, then ``lab_noise_sweep`` (the benchmark only: real data has one)."""
    if cfg.dataset != "benchmark":
        return [cfg.noise]
    return [cfg.noise, *sorted(set(cfg.lab_noise_sweep) - {cfg.noise})]


def cell_seeds(cfg: Profile, noise: float) -> list[int]:
    """Every seed at the profile's noise level, the first seed at the others."""
    return list(cfg.seeds) if noise == cfg.noise else [cfg.seeds[0]]


def cell_requests(
    cfg: Profile, data: Any, soft: SoftLabels, pools: Pools, ceiling_data: Any, noise: float,
    chosen: dict[str, float | None] | None = None,
) -> tuple[list[tuple[str, float | None]], list[RunRequest], list[tuple[int, str]], list[RunRequest]]:
    """The runs of one layout and noise level, as the notebook and the plan request them.

    Returns the grid's ``(method, value)`` keys and runs (first seed), and the seed runs' ``(seed, row)``
    keys and runs: B, the ceiling and each method at its ``chosen`` setting (the plan, which cannot know
    what validation will choose, passes ``None``: the defaults)."""
    methods, seeds = lab_methods(cfg), cell_seeds(cfg, noise)
    trials = [(m.name, v) for m in methods for v in m.grid]
    by_name = {m.name: m for m in methods}
    grid = [by_name[name].request(cfg, data, soft, pools, seeds[0], v) for name, v in trials]
    ceilings = {r.seed: r for r in sections.ceiling(cfg, ceiling_data)}
    keys: list[tuple[int, str]] = []
    runs: list[RunRequest] = []
    for seed in seeds:
        keys.append((seed, "B"))
        runs.append(RunRequest(data, cfg.target_arch, seed))
        if seed in ceilings:
            keys.append((seed, CEILING))
            runs.append(ceilings[seed])
        for m in methods:
            keys.append((seed, m.name))
            runs.append(m.request(cfg, data, soft, pools, seed, (chosen or {}).get(m.name, m.default)))
    return trials, grid, keys, runs


@dataclass
class LabCell:
    """One layout and noise level, trained: each row's test probabilities per seed and the grid's record."""

    layout: str
    noise: float
    test: scoring.ScoringSet  # the verdict's test images (paperkit.pipeline.scoring)
    probs: dict[int, dict[str, np.ndarray]]  # seed -> row -> [n_test, C] on ``test``, at the profile's score_epoch
    grid: pd.DataFrame  # method, value, default, chosen, val_auc (mined labels), test_auc (clean; first seed)


def run_cell(cfg: Profile, paths: RunPaths, layout: str, noise: float) -> LabCell:
    """Train (or load) one layout and noise level: the grid on the first seed, then every seed as chosen."""
    own = noise == cfg.noise
    base = ex.prepare(cfg, paths, layout)
    prep = base if own else ex.prepare(cfg, paths, layout, noise=noise)
    if not np.array_equal(prep.dataset.image_ids, base.dataset.image_ids):
        raise ValueError(f"{prep.key} and {base.key} list other images: the ceiling cannot be shared")
    soft = ex.soft_labels(cfg, paths, prep, ex.train_references(cfg, paths, prep))
    pools = ex.pools(cfg, paths, prep, soft, cfg.k)
    trials, grid_requests, _, _ = cell_requests(cfg, prep, soft, pools, base, noise)
    grid_runs = ex.train_runs(cfg, paths, grid_requests)
    test, last_epoch = scoring.scoring_set(cfg, paths, prep), cfg.score_epoch == "last"
    grid = pd.DataFrame([
        {"method": name, "value": value, "val_auc": 100 * run.best_auc,
         "test_auc": mean_auc(test.labels, test.probabilities(cfg, run, last_epoch)[:, test.eval_columns],
                              test.eval_classes)}
        for (name, value), run in zip(trials, grid_runs)
    ])
    chosen = {name: rows.loc[rows["val_auc"].idxmax(), "value"] for name, rows in grid.groupby("method", sort=False)}
    chosen = {name: None if pd.isna(v) else float(v) for name, v in chosen.items()}
    defaults = {m.name: m.default for m in lab_methods(cfg)}
    grid["default"] = [defaults[r.method] == (None if pd.isna(r.value) else r.value) for r in grid.itertuples()]
    grid["chosen"] = [chosen[r.method] == (None if pd.isna(r.value) else r.value) for r in grid.itertuples()]
    _, _, keys, requests = cell_requests(cfg, prep, soft, pools, base, noise, chosen)
    probs: dict[int, dict[str, np.ndarray]] = {}
    for (seed, name), run in zip(keys, ex.train_runs(cfg, paths, requests)):
        probs.setdefault(seed, {})[name] = test.probabilities(cfg, run, last_epoch)
    grid.insert(0, "noise", noise)
    grid.insert(0, "layout", layout)
    return LabCell(layout, noise, test, probs, grid)


def score_cell(cfg: Profile, cell: LabCell) -> dict[str, SeedMeanGain]:
    """Each method's seed-mean gain over B, noise cost and recovered share, seeds x patients bootstrap."""
    stored = RunPaths.for_profile(cfg).evaluations  # a rerun loads the bootstraps
    return {m.name: cached_headline_gain(stored, cell.test, cell.probs, cfg.bootstrap, model=m.name, ceiling=CEILING)
            for m in lab_methods(cfg)}


def lab_frame(cells: list[LabCell], gains: list[dict[str, SeedMeanGain]]) -> pd.DataFrame:
    """Tidy: one row per layout, noise level and method, with gain, noise cost and recovered share (CIs)."""
    rows = []
    for cell, cell_gains in zip(cells, gains):
        chosen = cell.grid[cell.grid["chosen"]].set_index("method")["value"]
        default_test = cell.grid[cell.grid["default"]].set_index("method")["test_auc"]
        for name, g in cell_gains.items():
            row = {"layout": cell.layout, "noise": cell.noise, "method": name, "seeds": len(g.per_seed),
                   "setting": chosen.get(name), "auc": g.model_auc, "B": g.reference_auc, "gain": g.gain,
                   "gain_low": g.ci_low, "gain_high": g.ci_high, "default_first_seed_auc": default_test.get(name),
                   "images": g.images}
            if g.noise_cost is not None and g.recovered is not None:
                row |= {"ceiling": g.ceiling_auc, "noise_cost": g.noise_cost.value,
                        "noise_cost_low": g.noise_cost.ci_low, "noise_cost_high": g.noise_cost.ci_high,
                        "recovered": g.recovered.value, "recovered_low": g.recovered.ci_low,
                        "recovered_high": g.recovered.ci_high}
            rows.append(row)
    return pd.DataFrame(rows)


def with_method(cfg: Profile, name: str) -> Profile:
    """``cfg`` with ``name`` (a registered method, e.g. a reader's own) added to the lab's methods."""
    get_method(name)  # fails early, naming the registered methods
    return dataclasses.replace(cfg, lab_methods=tuple(dict.fromkeys((*cfg.lab_methods, name))))
