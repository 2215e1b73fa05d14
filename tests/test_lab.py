"""The label-noise lab (notebook 09): methods, the settings grid chosen on validation, the table and figure."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from paperkit.config import resolve
from paperkit.evaluation import figures
from paperkit.evaluation.figures import lab_forest
from paperkit.evaluation.report import lab_grid_table, lab_table
from paperkit.method.losses import bce_loss
from paperkit.method.noisy_losses import register_method
from paperkit.paths import RunPaths
from paperkit.pipeline import lab
from paperkit.pipeline.ceiling import CEILING
from paperkit.pipeline.sections import NamedData
from paperkit.pipeline.specs import Pools, SoftLabels


def toy_loss(logits, targets, mask, soft, rows, epoch, param, state):
    """BCE scaled by param: a reader's own method in four lines."""
    return param * bce_loss(logits, targets, mask)


register_method("toy_lab", toy_loss, default=1.0, grid=(0.5, 1.0), replace=True)


def _named(cfg):
    data = NamedData("nih", "nih", cfg.uncertain_policy, True)
    soft = SoftLabels.of(cfg, "nih", "all", ["nih/ref-a"])
    return data, soft, Pools.of(cfg, soft, cfg.k)


def test_lab_methods_grids_hold_the_default_and_the_paper_method_comes_last():
    cfg = resolve("cpu", {"lab_methods": "kd,gce,toy_lab"})
    methods = {m.name: m for m in lab.lab_methods(cfg)}
    assert list(methods) == ["kd", "gce", "toy_lab", lab.PAPER_METHOD]
    assert methods["kd"].grid == (None,) and methods["toy_lab"].grid == (0.5, 1.0)
    assert cfg.lambda_modl in methods[lab.PAPER_METHOD].grid and methods["gce"].default in methods["gce"].grid


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown method 'nope'.*registered"):
        lab.lab_methods(resolve("cpu", {"lab_methods": "nope"}))


def test_requests_use_the_method_and_only_soft_labels_it_reads():
    cfg = resolve("cpu", {"lab_methods": "kd,gce"})
    data, soft, pools = _named(cfg)
    trials, grid, keys, runs = lab.cell_requests(cfg, data, soft, pools, data, cfg.noise)
    assert len(grid) == len(trials) and {r.seed for r in grid} == {cfg.seeds[0]}
    by_key = dict(zip(keys, runs))
    assert by_key[(0, "gce")].changes == {"method": "gce", "method_param": 0.7} and by_key[(0, "gce")].soft is None
    assert by_key[(0, "kd")].soft is soft and by_key[(0, "kd")].variant == "B"
    assert by_key[(0, lab.PAPER_METHOD)].variant == "B+MODL+KNNS"
    assert by_key[(0, CEILING)].prep.training_labels == "clean"
    assert {s for s, _ in keys} == set(cfg.seeds)
    # other noise levels: the first seed only
    _, _, other_keys, _ = lab.cell_requests(cfg, data, soft, pools, data, 2.0)
    assert {s for s, _ in other_keys} == {cfg.seeds[0]}


@pytest.mark.parametrize("profile, overrides, levels", [
    ("lab", {}, [1.0]),  # the measured rates only
    ("lab", {"lab_noise_sweep": "0,2"}, [1.0, 0.0, 2.0]),
    ("lab", {"lab_noise_sweep": "2,1"}, [1.0, 2.0]),  # the profile's own level once, first
    ("nih", {"lab_noise_sweep": "0,2"}, [1.0]),  # real data has its one noise level
])
def test_noise_levels(profile, overrides, levels):
    assert lab.noise_levels(resolve(profile, overrides)) == levels


@pytest.fixture(scope="module")
def tiny_lab(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PAPERKIT_RESULTS", str(tmp_path_factory.mktemp("lab")))
    # workers=2: the references train in worker processes, the toy method (unknown to a fresh worker) here
    cfg = resolve("smoke", {"n_images": 120, "epochs": 1, "layouts": "nih", "seeds": "0,1", "lab_methods": "toy_lab",
                            "lambda_sweep": "", "bootstrap": 20, "workers": 2})
    cell = lab.run_cell(cfg, RunPaths.for_profile(cfg), "nih", cfg.noise)
    yield cfg, cell
    mp.undo()


def test_a_registered_method_gets_its_row(tiny_lab, tmp_path, monkeypatch):
    cfg, cell = tiny_lab
    assert set(cell.probs) == {0, 1} and {"B", CEILING, "toy_lab", lab.PAPER_METHOD} <= set(cell.probs[0])
    frame = lab.lab_frame([cell], [lab.score_cell(cfg, cell)])
    row = frame.set_index("method").loc["toy_lab"]
    assert row["seeds"] == 2 and np.isfinite([row["gain"], row["noise_cost"], row["recovered"]]).all()
    table = lab_table(frame)
    assert "toy_lab" in table.display.index.get_level_values("method")
    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, out_dir, stem: drawn.append(fig) or [])
    lab_forest(frame, tmp_path)
    (ax,) = drawn[0].axes  # one layout, one noise level
    assert [t.get_text() for t in ax.get_yticklabels()] == list(frame["method"])
    assert ax.get_title() == "nih, noise 1x (2 seeds)"
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and dashed[0].get_xdata()[0] == pytest.approx(row["noise_cost"])


def test_the_setting_is_the_one_validation_prefers(tiny_lab):
    _, cell = tiny_lab
    toy = cell.grid[cell.grid["method"] == "toy_lab"]
    assert toy["chosen"].sum() == 1 and toy.loc[toy["chosen"], "val_auc"].item() == toy["val_auc"].max()
    assert toy.loc[toy["default"], "value"].item() == 1.0
    assert "chosen" in " ".join(lab_grid_table(cell.grid).display[""])


def test_recovered_is_na_where_the_noise_cost_includes_zero():
    frame = pd.DataFrame([{"layout": "nih", "noise": 0.0, "method": "m", "seeds": 1, "setting": None, "auc": 80.0,
                           "B": 80.0, "gain": 0.1, "gain_low": -0.5, "gain_high": 0.7, "default_first_seed_auc": None,
                           "ceiling": 80.1, "noise_cost": 0.1, "noise_cost_low": -0.2, "noise_cost_high": 0.4,
                           "recovered": 1.0, "recovered_low": -3.0, "recovered_high": 4.0}])
    assert lab_table(frame).display["recovered [95% CI]"].item() == "n/a"
    shown = lab_table(frame.assign(noise_cost_low=0.05)).display["recovered [95% CI]"].item()  # a cost clear of 0
    assert shown == "100 % [-300 %, 400 %]"


def test_another_noise_level_trains_its_own_teachers_on_the_first_seed_and_shares_the_ceiling(tiny_lab):
    cfg, cell = tiny_lab
    noisier = lab.run_cell(cfg, RunPaths.for_profile(cfg), "nih", 2.0)
    assert noisier.noise == 2.0 and set(noisier.probs) == {cfg.seeds[0]}
    first, other = cell.probs[cfg.seeds[0]], noisier.probs[cfg.seeds[0]]
    assert set(other) == set(first)
    np.testing.assert_array_equal(other[CEILING], first[CEILING])  # the clean labels do not depend on the noise
    for row in ("B", lab.PAPER_METHOD):  # trained on the noisier labels (and taught by the noisier teachers)
        assert not np.array_equal(other[row], first[row])
