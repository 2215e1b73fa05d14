"""The verdict's test images: the test split plus a second draw of patients that changes no training input."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from paperkit.config import ConfigError, resolve
from paperkit.evaluation.verdict import headline_gain, seed_mean_gain
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment as ex
from paperkit.pipeline import scoring
from paperkit.pipeline.specs import extra_draw_seed


@pytest.fixture(scope="module", params=["nih", "chexpert"])
def drawn(request, tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("PAPERKIT_RESULTS", str(tmp_path_factory.mktemp("scoring")))
    cfg = resolve("smoke", {"n_images": 120, "extra_test_images": 40, "epochs": 1, "layouts": request.param,
                            "bootstrap": 20})
    paths = RunPaths.for_profile(cfg)
    prep = ex.prepare(cfg, paths, request.param)
    yield cfg, paths, prep, scoring.scoring_set(cfg, paths, prep)
    mp.undo()


def test_second_draw_seed_differs_by_benchmark_and_size() -> None:
    seeds = {extra_draw_seed(s, n) for s in (0, 1, 20261202) for n in (4000, 12000)}
    assert len(seeds) == 6 and not seeds & {0, 1, 20261202}


def test_scoring_set_is_the_test_split_then_every_image_of_the_second_draw(drawn) -> None:
    cfg, paths, prep, test = drawn
    (first, first_rows), (extra, extra_rows) = test.parts
    assert first is prep and np.array_equal(first_rows, prep.rows("test"))
    assert extra.key != prep.key and sorted(extra_rows) == list(range(len(extra.dataset)))
    assert len(test) == len(prep.rows("test")) + len(extra.dataset)
    # scored against the clean truth everywhere: the split's as in Tables 1-2, the draw's every image
    np.testing.assert_array_equal(test.labels[: len(first_rows)], prep.labels("test"))
    np.testing.assert_array_equal(test.labels[len(first_rows):],
                                  extra.dataset.clean_labels[extra_rows][:, extra.eval_columns])
    # the draw's patients are other people: no id is shared with the test split's
    assert not set(test.patient_ids[: len(first_rows)]) & set(test.patient_ids[len(first_rows):])


def test_second_draw_changes_no_training_input(drawn) -> None:
    """Every run trained without the second draw stays valid: same folder, same content hash of its inputs."""
    cfg, paths, prep, _ = drawn
    without = dataclasses.replace(cfg, extra_test_images=0)
    request = ex.RunRequest(ex.prepare(without, paths, prep.layout), cfg.target_arch, 0)
    (config_a, data_a, dir_a), (config_b, data_b, dir_b) = (
        ex.run_inputs(c, paths, dataclasses.replace(request, prep=p))
        for c, p in ((without, request.prep), (cfg, prep))
    )
    assert dir_a == dir_b and config_a == config_b and data_a.hash == data_b.hash


def test_probabilities_follow_the_parts_and_the_verdict_scores_them_all(drawn) -> None:
    cfg, paths, prep, test = drawn
    runs = ex.train_runs(cfg, paths, [ex.RunRequest(prep, cfg.target_arch, s) for s in (0, 1)])
    probs = {s: {"B": test.probabilities(cfg, r), "B+MODL+KNNS": test.probabilities(cfg, r, last_epoch=True)}
             for s, r in zip((0, 1), runs)}
    (first, rows), (extra, extra_rows) = test.parts
    np.testing.assert_allclose(probs[0]["B"], np.concatenate([ex.probabilities(cfg, runs[0], first, rows),
                                                              ex.probabilities(cfg, runs[0], extra, extra_rows)]))
    gain = headline_gain(test, probs, n_boot=20)
    direct = seed_mean_gain(test.labels, {s: {m: p[:, test.eval_columns] for m, p in by.items()}
                                          for s, by in probs.items()},
                            test.patient_ids, test.eval_classes, n_boot=20)
    assert (gain.gain, gain.ci_low, gain.ci_high) == (direct.gain, direct.ci_low, direct.ci_high)
    assert extra.key in gain.images


def test_without_a_second_draw_the_test_split_is_scored(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PAPERKIT_RESULTS", str(tmp_path))
    cfg = resolve("smoke", {"n_images": 60, "extra_test_images": 0, "layouts": "nih"})
    paths = RunPaths.for_profile(cfg)
    prep = ex.prepare(cfg, paths, "nih")
    test = scoring.scoring_set(cfg, paths, prep)
    assert len(test.parts) == 1 and np.array_equal(test.labels, prep.labels("test"))
    assert scoring.extra_draw(dataclasses.replace(cfg, dataset="nih"), paths, "nih") is None  # real data: none


@pytest.mark.parametrize("value", [-1, 5])
def test_extra_test_images_is_zero_or_a_draw(value: int) -> None:
    with pytest.raises(ConfigError, match="extra_test_images"):
        resolve("smoke", {"extra_test_images": value})
