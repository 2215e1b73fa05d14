"""The clean-label ceiling's training data: the same images and splits, the clean truth as every label."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from paperkit.config import apply_overrides, get_profile, resolve
from paperkit.data.datasets import XrayDataset
from paperkit.evaluation.verdict import mean_auc
from paperkit.paths import RunPaths
from paperkit.pipeline import ablations, sections
from paperkit.pipeline import experiment as ex
from paperkit.pipeline.ceiling import CEILING, ceiling_requests, clean_label_twin, has_clean_training_labels
from paperkit.pipeline.experiment import Prepared
from paperkit.pipeline.specs import CLEAN_LABELS

N, C = 40, 3


def prepared(clean: np.ndarray | None) -> Prepared:
    rng = np.random.default_rng(0)
    mined = rng.choice([0.0, 1.0, -1.0, np.nan], size=(N, C))
    split = np.array(["train"] * 24 + ["val"] * 6 + ["test"] * 10)
    ids = np.array([f"img{i}" for i in range(N)])
    dataset = XrayDataset("toy", None, ("a", "b", "c"), ids, ids, np.array([f"p{i // 2}" for i in range(N)]), ids,
                          np.array(["PA"] * N), mined, split, clean)
    targets = np.nan_to_num(np.clip(mined, 0, 1)).astype(np.float32)
    return Prepared("toy-seed1", "nih", dataset, None, targets, np.ones((N, C), bool), ("a", "b"), np.array([0, 1]),
                    "u_ones")


@pytest.fixture()
def clean() -> np.ndarray:
    return (np.random.default_rng(1).random((N, C)) < 0.3).astype(np.float32)


def test_twin_trains_and_selects_on_the_clean_truth(clean: np.ndarray) -> None:
    prep = prepared(clean)
    twin = clean_label_twin(prep)
    np.testing.assert_array_equal(twin.targets, clean)
    assert twin.mask.all()
    np.testing.assert_array_equal(twin.mined_labels("val"), clean[prep.rows("val")])  # the epoch is chosen on clean
    np.testing.assert_array_equal(twin.labels("test"), prep.labels("test"))  # scored on the same test truth
    assert twin.key == prep.key and twin.training_labels == CLEAN_LABELS
    np.testing.assert_array_equal(twin.dataset.split, prep.dataset.split)
    assert prep.dataset.labels is not twin.dataset.labels and np.isnan(prep.dataset.labels).any()  # prep untouched


def test_real_data_has_no_ceiling(clean: np.ndarray) -> None:
    partial = clean.copy()
    partial[3, 1] = np.nan  # one training image without clean truth
    for prep in (prepared(None), prepared(partial)):
        assert not has_clean_training_labels(prep)
        assert ceiling_requests(get_profile("smoke"), prep) == []
        with pytest.raises(ValueError, match="toy-seed1"):
            clean_label_twin(prep)


def test_ceiling_runs_are_b_on_clean_labels_for_every_seed(clean: np.ndarray) -> None:
    cfg = apply_overrides(get_profile("smoke"), {"seeds": "0,1,2"})
    prep = prepared(clean)
    requests = ceiling_requests(cfg, prep)
    assert [r.seed for r in requests] == [0, 1, 2]
    specs = [r.spec(cfg) for r in requests]
    assert all(s.variant == "B" and s.training_labels == CLEAN_LABELS and "-clean-" in s.name for s in specs)
    b = dataclasses.replace(requests[0], prep=prep).spec(cfg)
    assert b.folder != specs[0].folder and b.config == specs[0].config  # same training settings, other labels
    assert CEILING == "B (clean labels)"


def test_clean_references_are_each_reference_on_clean_labels(clean: np.ndarray) -> None:
    cfg = get_profile("cpu")
    requests = sections.clean_references(cfg, prepared(clean))
    assert [r.arch for r in requests] == list(cfg.reference_archs) and {r.seed for r in requests} == {0}
    assert all(r.prep.training_labels == CLEAN_LABELS and r.variant == "B" for r in requests)
    assert sections.clean_references(cfg, prepared(None)) == []  # real data: no clean world


@pytest.fixture(scope="module")
def tiny_worlds(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PAPERKIT_RESULTS", str(tmp_path_factory.mktemp("worlds")))
    cfg = resolve("smoke", {"n_images": 160, "epochs": 1, "layouts": "chexpert", "bootstrap": 20})
    paths = RunPaths.for_profile(cfg)
    prep = ex.prepare(cfg, paths, "chexpert")
    yield cfg, paths, prep, ablations.ensembles_clean_vs_mined(cfg, paths, prep, 0)
    mp.undo()


def test_ensembles_noise_cost_and_gain_are_the_clean_and_mined_worlds_mean_aucs(tiny_worlds) -> None:
    cfg, paths, prep, (cost, gain) = tiny_worlds
    test = prep.rows("test")
    truth = prep.labels("test")

    def auc(run) -> float:
        return mean_auc(truth, ex.probabilities(cfg, run, prep, test)[:, prep.eval_columns], prep.eval_classes)

    mined_b = ex.train_run(cfg, paths, prep, cfg.target_arch, 0)
    # one epoch: the last epoch is the chosen one, so both readings of the run predict alike
    np.testing.assert_allclose(ex.last_epoch_probabilities(cfg, mined_b, prep, test),
                               ex.probabilities(cfg, mined_b, prep, test), atol=1e-6)
    clean_b = ex.train_runs(cfg, paths, sections.ceiling(cfg, prep)[:1])[0]
    clean_refs = ex.train_runs(cfg, paths, sections.clean_references(cfg, prep))
    assert all("-clean-" in r.run_dir.name for r in [clean_b, *clean_refs])
    row = cost.tidy.set_index("network").loc["B"]
    assert row["model_mean_auc"] == pytest.approx(auc(clean_b))
    assert row["reference_mean_auc"] == pytest.approx(auc(mined_b))
    assert row["gain"] == pytest.approx(auc(clean_b) - auc(mined_b))
    assert list(cost.tidy["network"]) == ["B", "Ensemble 1", "Ensemble 2"]
    assert "noise cost [95% CI]" in cost.display.columns and "gain [95% CI]" in gain.display.columns
    by_world = gain.tidy.set_index("training labels")
    assert by_world.loc["clean labels", "reference_mean_auc"] == pytest.approx(auc(clean_b))
    assert list(by_world.index) == ["mined labels", "clean labels"] and (by_world["model"] == "Ensemble 2").all()
