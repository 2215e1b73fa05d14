"""Teaching ablations beyond the paper's tables, one function each, called by notebooks 05 and 06.

Each function requests its runs through the resumable steps of :mod:`paperkit.pipeline.experiment` (a run
that exists is loaded, not trained again) and returns what a notebook shows: a
:class:`~paperkit.evaluation.report.ReportTable` and, where there is one, the data of its figure.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import pandas as pd

from paperkit.config import Profile
from paperkit.evaluation import report
from paperkit.evaluation.metrics import MEAN, class_aucs
from paperkit.method.soft_labels import average_predictions
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.pipeline import sections
from paperkit.pipeline.specs import ALL_REFERENCES, Pools, SoftLabels, pruned_labels, teacher_changes
from paperkit.training.loop import TrainResult

#: Columns of metrics.csv the memory bank writes (see paperkit.method.bank).
BANK_COLUMNS = ("bank_age_mean", "bank_age_max", "bank_unseen")


def memorisation_frame(runs: Mapping[tuple[str, str], TrainResult]) -> pd.DataFrame:
    """Per-epoch AUCs of monitored runs, long format: ``layout, variant, epoch, curve, auc`` (%).

    ``curve`` is ``train vs mined`` (the labels the model is fitted to), ``test vs clean`` (the
    truth) or ``validation vs mined`` (what chooses the epoch). Runs without monitor columns
    (real data, or ``memorisation`` not in the profile's ``teaching``) are left out.
    """
    names = {"monitor_train_mined": "train vs mined", "monitor_test_clean": "test vs clean",
             "val_auc": "validation vs mined"}
    frames = []
    for (layout, variant), run in runs.items():
        if "monitor_train_mined" not in run.history:
            continue
        part = run.history[["epoch", *names]].melt("epoch", var_name="curve", value_name="auc")
        frames.append(
            part.assign(layout=layout, variant=variant, curve=part["curve"].map(names), auc=100 * part["auc"])
        )
    columns = ["layout", "variant", "epoch", "curve", "auc"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def faithful_vs_efficient(
    cfg: Profile, paths: RunPaths, prep: ex.Prepared, soft: SoftLabels, pool: Pools, seed: int
) -> report.ReportTable:
    """B+KNNS with neighbours forwarded (eq. 4, ``faithful``) and read from the memory bank (``efficient``).

    Same seed, batch order and anchor crops as B; scored on the clean test labels. The table gives
    each mode's gain over B with its paired CI, the training time relative to B, and the bank's
    read ages; its note gives efficient − faithful with its paired CI.
    """
    requests = sections.faithful_vs_efficient(cfg, prep, soft, pool, seed)
    runs = dict(zip(requests, ex.train_runs(cfg, paths, list(requests.values()))))
    test = prep.rows("test")
    probs = {m: ex.probabilities(cfg, r, prep, test) for m, r in runs.items()}
    result = ex.evaluate(cfg, prep, probs)
    seconds = {m: float(r.history["train_s"].sum()) for m, r in runs.items()}
    columns = {"training time / B": {m: s / seconds["B"] for m, s in seconds.items()}}
    bank = runs["B+KNNS (efficient)"].history
    columns["bank age, mean (epochs)"] = {"B+KNNS (efficient)": bank["bank_age_mean"].mean()}
    columns["bank age, max (epochs)"] = {"B+KNNS (efficient)": bank["bank_age_max"].max()}
    columns["unseen reads (%)"] = {"B+KNNS (efficient)": 100 * bank["bank_unseen"].mean()}
    table = report.ablation_table(
        result,
        "faithful_vs_efficient",
        f"KNNS with neighbours forwarded (faithful, eq. 4) vs read from the memory bank "
        f"(efficient), {prep.layout} layout, seed {seed}, γ = {cfg.gamma_knns:g}, "
        f"K = {cfg.k} ({cfg.knns_k_reduction} over k).",
        columns=columns,
    )
    pair = ex.evaluate(
        cfg, prep, {m: probs[m] for m in ("B+KNNS (faithful)", "B+KNNS (efficient)")}, reference="B+KNNS (faithful)"
    )
    d = pair.diff[pair.diff["class"] == MEAN].iloc[0]
    note = (
        f"efficient − faithful: {100 * d['diff']:+.2f} [{100 * d['ci_low']:+.2f}, {100 * d['ci_high']:+.2f}] "
        f"mean AUC (paired, same test images). Bank ages: mean over epochs of the per-epoch mean; max over epochs."
    )
    return dataclasses.replace(table, notes=(*table.notes, note))


def grid_references(cfg: Profile) -> tuple[list[str], str]:
    """The references of the grid and out-of-fold ablations and the soft labels' name (``"all"`` or ``"small"``)."""
    archs = list(cfg.ablation_reference_archs or cfg.reference_archs)
    return archs, ALL_REFERENCES if archs == list(cfg.reference_archs) else "small"


def teacher_request(
    cfg: Profile, paths: RunPaths, prep: ex.Prepared, seed: int, soft: SoftLabels, weight: float | None = None
) -> ex.RunRequest:
    """B+MODL+KNNS taught by ``soft`` (and its pools), with λ = γ = ``weight`` (default: the profile's)."""
    changes = {} if weight is None else teacher_changes(weight)
    return ex.RunRequest(
        prep, cfg.target_arch, seed, "B+MODL+KNNS", soft, ex.pools(cfg, paths, prep, soft, cfg.k), changes=changes
    )


def noise_lambda_grid(cfg: Profile, paths: RunPaths, layout: str, seed: int) -> pd.DataFrame:
    """Where does the method help? Gain over B for each label-noise level x λ = γ (benchmark only).

    At each noise level (the profile's and ``noise_sweep``) the benchmark is re-labelled (same
    images), the grid's references (:func:`grid_references`) are trained, then B and B+MODL+KNNS
    for each λ = γ in ``{λ} ∪ lambda_sweep``, all with ``seed``. Scored on the clean test labels.

    Returns
    -------
    pandas.DataFrame
        One row per cell: ``noise, weight, B, model, gain, ci_low, ci_high`` (test, %), ``val_B`` and
        ``val_model`` (validation AUC on mined labels, %) and ``chosen`` (the weight validation
        picks at that noise level: what a user without clean labels would pick).
    """
    archs, teacher = grid_references(cfg)
    rows = []
    for level in sorted({cfg.noise, *cfg.noise_sweep}):
        prep = ex.prepare(cfg, paths, layout, noise=None if level == cfg.noise else level)
        soft = ex.soft_labels(cfg, paths, prep, ex.train_references(cfg, paths, prep, archs=archs), name=teacher)
        requests = {"B": ex.RunRequest(prep, cfg.target_arch, seed)}
        for w in sorted({cfg.lambda_modl, *cfg.lambda_sweep}):
            requests[w] = teacher_request(cfg, paths, prep, seed, soft, w)
        runs = dict(zip(requests, ex.train_runs(cfg, paths, list(requests.values()))))
        result = ex.evaluate(
            cfg, prep, {str(m): ex.probabilities(cfg, r, prep, prep.rows("test")) for m, r in runs.items()}
        )
        diff = result.diff[result.diff["class"] == MEAN].set_index("model")
        for w, run in runs.items():
            if w == "B":
                continue
            d = diff.loc[str(w)]
            rows.append(
                {
                    "noise": level,
                    "weight": w,
                    "B": 100 * result.mean_auc("B"),
                    "model": 100 * result.mean_auc(str(w)),
                    "gain": 100 * d["diff"],
                    "ci_low": 100 * d["ci_low"],
                    "ci_high": 100 * d["ci_high"],
                    "val_B": 100 * runs["B"].best_auc,
                    "val_model": 100 * run.best_auc,
                }
            )
    grid = pd.DataFrame(rows)
    best = grid.loc[grid.groupby("noise")["val_model"].idxmax(), ["noise", "weight"]]
    grid["chosen"] = [(n, w) in set(map(tuple, best.to_numpy())) for n, w in grid[["noise", "weight"]].to_numpy()]
    return grid


def grid_table(grid: pd.DataFrame, cfg: Profile, layout: str, seed: int) -> report.ReportTable:
    """:func:`noise_lambda_grid` as a report table (one row per cell)."""
    archs, _ = grid_references(cfg)
    display = pd.DataFrame(
        {
            "noise": grid["noise"].map("{:g}".format),
            "λ = γ": grid["weight"].map("{:g}".format),
            "B": grid["B"].map("{:.2f}".format),
            "B+MODL+KNNS": grid["model"].map("{:.2f}".format),
            "gain [95% CI]": [
                f"{g:+.2f} [{lo:+.2f}, {hi:+.2f}]" for g, lo, hi in grid[["gain", "ci_low", "ci_high"]].to_numpy()
            ],
            "validation AUC (mined)": [
                f"{v:.2f}" + (" (chosen)" if c else "") for v, c in grid[["val_model", "chosen"]].to_numpy()
            ],
        }
    ).set_index(["noise", "λ = γ"])
    notes = (
        "Test: mean AUC (%) on clean labels, gain paired on the same test images (patient bootstrap). "
        "'chosen': the weight with the best validation AUC on mined labels at that noise level.",
        f"Noise 0 = mined labels equal the truth; 1 = the measured NIH rates; 2 = twice the miss and "
        f"false-positive rates. References: {', '.join(archs)}.",
    )
    caption = f"Gain of B+MODL+KNNS over B by label-noise level and λ = γ, {layout} layout, seed {seed}."
    return report.ReportTable("ablation_noise_lambda_grid", caption, grid, display, notes)


def ensemble_members(cfg: Profile) -> dict[str, list[str]]:
    """Table 3's ensembles: Ensemble 1 = the DenseNet references (the first three references where fewer
    than two are DenseNets), Ensemble 2 = all references."""
    densenets = [a for a in cfg.reference_archs if a.startswith("densenet")]
    return {"Ensemble 1": densenets if len(densenets) >= 2 else list(cfg.reference_archs[:3]),
            "Ensemble 2": list(cfg.reference_archs)}


def ensembles_clean_vs_mined(cfg: Profile, paths: RunPaths, prep: ex.Prepared,
                             seed: int) -> tuple[report.ReportTable, report.ReportTable]:
    """Is an ensemble better because the label noise misleads it less, or because it is an ensemble?

    B, Ensemble 1 and Ensemble 2 are scored twice on the clean test labels: trained on the mined labels
    (as everywhere) and on the clean ones (the references and B of :func:`sections.clean_references` and
    the ceiling). Returns the noise cost of each (clean − mined) and the ensemble's gain over B in each
    world, each with its patient-bootstrap CI (one training seed: B's ``seed``, the references' 0).
    An ensemble misled less by the noise has a smaller noise cost than B, and a larger gain over B
    when both learn from mined labels than when both learn from clean ones.
    """
    members = ensemble_members(cfg)
    test = prep.rows("test")
    clean_b = [r for r in sections.ceiling(cfg, prep) if r.seed == seed]
    trained = {
        "mined": (ex.train_run(cfg, paths, prep, cfg.target_arch, seed), ex.train_references(cfg, paths, prep)),
        "clean": (ex.train_runs(cfg, paths, clean_b)[0],
                  dict(zip(cfg.reference_archs, ex.train_runs(cfg, paths, sections.clean_references(cfg, prep))))),
    }
    probs: dict[str, dict[str, np.ndarray]] = {}
    for world, (b, refs) in trained.items():
        ref_probs = {a: ex.probabilities(cfg, r, prep, test) for a, r in refs.items()}
        probs[world] = {"B": ex.probabilities(cfg, b, prep, test)}
        probs[world].update({name: average_predictions([ref_probs[a] for a in archs])
                             for name, archs in members.items()})
    cost = {model: ex.evaluate(cfg, prep, {"mined labels": probs["mined"][model],
                                           "clean labels": probs["clean"][model]}, reference="mined labels")
            for model in probs["mined"]}
    gain = {f"{world} labels": ex.evaluate(cfg, prep, probs[world]) for world in probs}
    where = f"{prep.layout} layout, B's seed {seed}, references' seed 0"
    cost_caption = f"What the label noise costs B and each ensemble: trained on clean − on mined labels ({where})."
    gain_caption = f"Ensemble 2's gain over B when both learn from mined and from clean labels ({where})."
    return (report.gain_table(cost, "clean labels", "ensembles_noise_cost", cost_caption, row_label="network",
                              difference="noise cost"),
            report.gain_table(gain, "Ensemble 2", "ensembles_gain_by_labels", gain_caption,
                              row_label="training labels"))


def label_quality(prep: ex.Prepared, sources: Mapping[str, np.ndarray], rows: np.ndarray) -> pd.DataFrame:
    """How close each label source is to the clean truth on ``rows`` (benchmark only: needs clean labels).

    Parameters
    ----------
    sources
        Name -> ``[N, C]`` labels or probabilities over all findings (e.g. ``prep.mined_labels()``, soft
        labels); unknown (NaN) counts as 0.

    Returns
    -------
    pandas.DataFrame
        One row per source and finding with both truth values: ``source, class, auc`` (ranking, %) and
        ``brier`` (calibration).
    """
    truth = prep.dataset.clean_labels[rows]
    out = []
    for name, values in sources.items():
        scores = np.nan_to_num(np.asarray(values, dtype=float)[rows])
        aucs = class_aucs(truth, scores)
        for c, finding in enumerate(prep.classes):
            known = np.isfinite(truth[:, c])
            if np.isfinite(aucs[c]):
                out.append(
                    {
                        "source": name,
                        "class": finding,
                        "auc": 100 * aucs[c],
                        "brier": float(np.mean((scores[known, c] - truth[known, c]) ** 2)),
                    }
                )
    return pd.DataFrame(out)


def uncertain_policies(cfg: Profile, paths: RunPaths, seed: int) -> report.ReportTable:
    """B under U-Ones (the paper's), U-Zeros, U-Ignore and U-Ones+LSR on the CheXpert layout (Table 2's baselines)."""
    requests = sections.uncertain_policies(
        cfg, lambda policy: ex.prepare(cfg, paths, "chexpert", policy=policy), seed
    )
    runs = ex.train_runs(cfg, paths, list(requests.values()))
    probs = {
        name: ex.probabilities(cfg, run, r.prep, r.prep.rows("test")) for (name, r), run in zip(requests.items(), runs)
    }
    return report.ablation_table(
        ex.evaluate(cfg, requests["B"].prep, probs),
        "uncertain_policies",
        f"Uncertain-label policies for B on the CheXpert layout (seed {seed}).",
    )


def loss_variants(cfg: Profile, paths: RunPaths, prep: ex.Prepared, soft: SoftLabels, seed: int) -> report.ReportTable:
    """B+MODL with eq. 2 as printed (``as_printed_kl``) and with one teacher (``single_reference``, N = 1),
    beside B and B+MODL; whichever of the two the profile's ``teaching`` lists."""
    test = prep.rows("test")

    def one_reference(arch: str) -> SoftLabels:
        return ex.soft_labels(cfg, paths, prep, ex.train_references(cfg, paths, prep, archs=[arch]), name="n1")

    requests = sections.loss_variants(cfg, prep, soft, seed, one_reference)
    runs = dict(zip(requests, ex.train_runs(cfg, paths, list(requests.values()))))
    probs = {m: ex.probabilities(cfg, r, prep, test) for m, r in runs.items()}
    seconds = {m: float(r.history["train_s"].sum()) for m, r in runs.items()}
    return report.ablation_table(
        ex.evaluate(cfg, prep, probs),
        "teaching",
        f"MODL's loss form and number of teachers, {prep.layout} layout (seed {seed}).",
        columns={"training seconds": seconds},
    )


def teachers(cfg: Profile, paths: RunPaths, prep: ex.Prepared, seed: int) -> tuple[report.ReportTable, pd.DataFrame]:
    """In-fold vs out-of-fold teachers (``out_of_fold``) and cleanlab prune-and-retrain (``cleanlab``).

    The paper's references score the very images they were trained on, so their soft labels repeat
    some of the noise they memorised; out-of-fold teachers (``oof_folds`` patient folds) never saw
    the image they score. cleanlab's ``find_label_issues`` is meant for out-of-fold predictions:
    the images it flags are masked out of BCE and B is retrained (with the in-fold soft labels when
    ``out_of_fold`` is not run, a stated deviation from cleanlab's advice).

    Returns
    -------
    The table, and each label source's mean AUC (%) and Brier score against the clean training
    labels (empty on real data).
    """
    archs, name = grid_references(cfg)
    train, test = prep.rows("train"), prep.rows("test")
    soft_in = ex.soft_labels(cfg, paths, prep, ex.train_references(cfg, paths, prep, archs=archs), name=name)
    b = ex.train_run(cfg, paths, prep, cfg.target_arch, seed)
    probs = {"B": ex.probabilities(cfg, b, prep, test)}
    sources = {"mined labels": prep.mined_labels(), "in-fold": soft_in.values}
    for_cleanlab, kind = soft_in, "infold"
    if "out_of_fold" in cfg.teaching:
        soft_oof = ex.out_of_fold_soft_labels(cfg, paths, prep, cfg.oof_folds, archs=archs)
        requests = {
            label: teacher_request(cfg, paths, prep, seed, soft)
            for label, soft in (("in-fold", soft_in), ("out-of-fold", soft_oof))
        }
        for label, run in zip(requests, ex.train_runs(cfg, paths, list(requests.values()))):
            probs[f"B+MODL+KNNS ({label} teachers)"] = ex.probabilities(cfg, run, prep, test)
        sources["out-of-fold"], for_cleanlab, kind = soft_oof.values, soft_oof, "oof"
    if "cleanlab" in cfg.teaching:
        from cleanlab.multilabel_classification.filter import find_label_issues

        given = [list(np.flatnonzero(row)) for row in np.nan_to_num(prep.targets[train]) >= 0.5]
        flagged = find_label_issues(labels=given, pred_probs=for_cleanlab.values[train])
        mask = prep.mask.copy()
        mask[train[flagged]] = False
        pruned = dataclasses.replace(prep, mask=mask, training_labels=pruned_labels(prep.training_labels, for_cleanlab))
        run = ex.train_run(cfg, paths, pruned, cfg.target_arch, seed)
        probs[f"B (cleanlab: {int(flagged.sum())} of {len(train)} pruned, {kind})"] = ex.probabilities(
            cfg, run, prep, test
        )
    agreement = pd.DataFrame()
    if prep.clean_coverage("train") == "complete":
        agreement = label_quality(prep, sources, train).groupby("source", sort=False)[["auc", "brier"]].mean()
    table = report.ablation_table(
        ex.evaluate(cfg, prep, probs),
        "teachers",
        f"Out-of-fold vs in-fold teachers ({', '.join(archs)}) and cleanlab pruning, "
        f"{prep.layout} layout (seed {seed}).",
    )
    return table, agreement
