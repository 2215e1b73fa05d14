"""The label-noise lab's tables (notebook 09): every method's gain and recovered share, and the settings grid."""
from __future__ import annotations

import pandas as pd

from paperkit.evaluation.report.format import ReportTable, images_note


def _ci(value: float, low: float, high: float, scale: float = 1.0, fmt: str = "{:+.2f}") -> str:
    if pd.isna(value):
        return "n/a"
    return f"{fmt.format(scale * value)} [{fmt.format(scale * low)}, {fmt.format(scale * high)}]"


def _recovered(row: pd.Series) -> str:
    """The share as a percentage, or n/a where the noise cost's CI includes 0 (nothing to win back)."""
    if "recovered" not in row or pd.isna(row.get("recovered")) or row["noise_cost_low"] <= 0 <= row["noise_cost_high"]:
        return "n/a"
    return _ci(row["recovered"], row["recovered_low"], row["recovered_high"], 100, "{:.0f} %")


def lab_table(frame: pd.DataFrame, labels: str = "clean", stem: str = "lab", score_epoch: str = "last") -> ReportTable:
    """One row per layout, noise level and method: mean AUC, gain over B, recovered share (95 % CIs).

    ``frame`` is :func:`paperkit.pipeline.lab.lab_frame`'s (``labels``: the test labels scored; ``stem``: the
    files' name; ``score_epoch``: the epoch each run was scored at, the profile's)."""
    display = pd.DataFrame({
        "layout": frame["layout"],
        "noise": frame["noise"].map("{:g}x".format),
        "method": frame["method"],
        "seeds": frame["seeds"].astype(str),
        "setting (validation)": frame["setting"].map(lambda v: "-" if pd.isna(v) else f"{v:g}"),
        "mean AUC": frame["auc"].map("{:.2f}".format),
        "gain over B [95% CI]": [_ci(r.gain, r.gain_low, r.gain_high) for r in frame.itertuples()],
        "recovered [95% CI]": [_recovered(row) for _, row in frame.iterrows()],
        "first seed at default": frame["default_first_seed_auc"].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}"),
    }).set_index(["layout", "noise", "method"])
    notes = (
        f"Mean AUC (%) on the {labels} test labels, averaged over training seeds; CIs resample seeds and test "
        "patients together (paperkit.evaluation.verdict.seed_mean_gain). Every method trains the target on the "
        "same images, seeds, schedule and batch order as B; each run is scored at "
        + ("its last epoch." if score_epoch == "last" else "the epoch validation chose."),
        "Recovered = (method − B) / (ceiling − B), the ceiling being the target trained on the clean labels; n/a "
        "where the noise cost's CI includes 0 (at noise 0 there is nothing to win back).",
        "Setting: the value of the method's grid with the best mined-label validation AUC on the first seed, "
        "chosen before any test score; 'first seed at default' is the test AUC at the authors' value.",
        "Noise: multiple of the measured NIH report-mining error rates; rows with 1 seed rest on one seed.",
    )
    if "images" in frame:
        notes += images_note(frame.drop_duplicates("layout").set_index("layout")["images"].to_dict())
    return ReportTable(stem, "The label-noise lab: each method against B and the clean-label ceiling.",
                       frame, display, notes)


def lab_grid_table(grid: pd.DataFrame) -> ReportTable:
    """Every setting each method tried on the first seed: validation AUC (mined labels), test AUC (clean)."""
    display = pd.DataFrame({
        "layout": grid["layout"],
        "noise": grid["noise"].map("{:g}x".format),
        "method": grid["method"],
        "setting": grid["value"].map(lambda v: "-" if pd.isna(v) else f"{v:g}"),
        "validation AUC (mined)": grid["val_auc"].map("{:.2f}".format),
        "test AUC (clean)": grid["test_auc"].map("{:.2f}".format),
        "": [("chosen" if c else "") + (" default" if d else "") for c, d in zip(grid["chosen"], grid["default"])],
    }).set_index(["layout", "noise", "method", "setting"])
    return ReportTable("lab_grid", "The lab's settings grid, first seed: chosen on validation, never on test.",
                       grid, display, ("The chosen setting trains every other seed.",))
