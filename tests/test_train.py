"""The trainer: paired batches, exact resume, recorded loss terms, forward counts, atomic checkpoints."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CROP, SIZE, VARIANT, C, N, config, make_data

import paperkit.training.context as run_context
import paperkit.training.loop as train
import paperkit.training.state as run_state
from paperkit.config import get_profile
from paperkit.method.knn import neighbour_pools
from paperkit.models import create_model
from paperkit.runtime import memory_format
from paperkit.training.checkpoint import load_checkpoint, save_checkpoint
from paperkit.training.loop import ArrayImages, TrainConfig, fit, load_model, predict


def run(cfg: TrainConfig, run_dir: Path, data: dict | None = None, **kw) -> train.TrainResult:
    data = data or make_data()
    return fit(cfg, data["images"], data["train_index"], data["val_index"], data["targets"], data["mask"],
               run_dir, soft_labels=data["soft_labels"], pools=data["pools"], progress=False, **kw)


class Recorder:
    """An ImageSource that records every row it serves."""

    def __init__(self, images: ArrayImages) -> None:
        self.images, self.calls = images, []
        self.fingerprint = images.fingerprint

    def __len__(self) -> int:
        return len(self.images)

    def load(self, indices):
        self.calls.append(np.asarray(indices).copy())
        return self.images.load(indices)


def test_paired_runs_see_the_same_batches_and_crops(tmp_path: Path, monkeypatch) -> None:
    crops = {}
    real = train.apply_crops

    def spy(images, top, left, flip, crop):
        if torch.is_grad_enabled():  # training, not validation
            crops.setdefault(key, []).append(torch.stack([top[:8], left[:8], flip[:8].long()]))
        return real(images, top, left, flip, crop)

    monkeypatch.setattr(train, "apply_crops", spy)
    served = {}
    for key, cfg in [("B", config()), ("faithful", config(**VARIANT)),
                     ("efficient", config(**VARIANT, knns_mode="efficient"))]:
        data = make_data()
        data["images"] = Recorder(data["images"])
        run(cfg, tmp_path / key, data)
        # training steps load 8 anchors (+ 2 x 8 neighbours when faithful); the bank's warm start loads 32
        served[key] = [c[:8] for c in data["images"].calls if len(c) in (8, 24) and c.max() < 32]
    assert len(served["B"]) == 2 * 4  # 2 epochs x 32/8 steps
    for key in ("faithful", "efficient"):
        assert all(np.array_equal(a, b) for a, b in zip(served["B"], served[key], strict=True))
        assert all(torch.equal(a, b) for a, b in zip(crops["B"], crops[key], strict=True))
    assert not np.array_equal(served["B"][0], served["B"][4])  # a new order every epoch


def test_kill_and_resume_gives_identical_weights(tmp_path: Path, monkeypatch) -> None:
    cfg = config(**VARIANT, knns_mode="efficient")  # bank, both generators and the scheduler all matter
    straight = run(cfg, tmp_path / "straight")

    saves = []

    def save_then_die(path, state):
        save_checkpoint(path, state)
        if Path(path).name == "last.pt":
            saves.append(path)
            raise KeyboardInterrupt("killed after epoch 1")

    monkeypatch.setattr(run_context, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "resumed")
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "resumed" / "last.pt")["epoch"] == 1
    resumed = run(cfg, tmp_path / "resumed")

    a, b = (load_checkpoint(tmp_path / d / "last.pt") for d in ("straight", "resumed"))
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert all(torch.equal(a["bank"][k], b["bank"][k]) for k in ("logits", "written"))
    timing = ["train_s", "train_cpu_s", "img_per_s"]
    assert straight.history.drop(columns=timing).equals(resumed.history.drop(columns=timing))


def test_kill_after_the_last_checkpoint_finishes_with_every_epochs_metrics(tmp_path: Path, monkeypatch) -> None:
    """Killed between the final epoch's last.pt and its metrics.csv: the rerun has no epoch left to
    train and must still finish with the whole history, not the previous epoch's metrics.csv."""
    cfg = config()

    def save_then_die(path, state):
        save_checkpoint(path, state)
        if Path(path).name == "last.pt" and state["epoch"] == cfg.epochs:
            raise KeyboardInterrupt("killed before metrics.csv")

    monkeypatch.setattr(run_context, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, tmp_path / "run")
    monkeypatch.undo()
    assert len(train.pd.read_csv(tmp_path / "run" / "metrics.csv")) == cfg.epochs - 1
    resumed = run(cfg, tmp_path / "run")
    assert not resumed.skipped and list(resumed.history["epoch"]) == list(range(1, cfg.epochs + 1))
    history = train.pd.DataFrame(load_checkpoint(tmp_path / "run" / "last.pt")["history"])
    train.pd.testing.assert_frame_equal(resumed.history, history)


def test_loss_terms_recorded_and_finished_run_skipped(tmp_path: Path) -> None:
    result = run(config(**VARIANT, epochs=1), tmp_path / "v")
    h = result.history
    assert list(h.epoch) == [1] and (h[["bce", "modl", "knns"]] > 0).all().all()
    assert np.isclose(h.loss[0], h.bce[0] + 0.5 * h.modl[0] + 0.5 * h.knns[0], rtol=1e-5)
    assert (tmp_path / "v" / "metrics.csv").is_file() and {"val_auc", "auc_c0"} <= set(h.columns)
    base = run(config(epochs=1), tmp_path / "b").history
    assert base.modl[0] == 0 and base.knns[0] == 0
    again = run(config(**VARIANT, epochs=1), tmp_path / "v")
    assert again.skipped and again.history.equals(h)
    changed = run(config(**VARIANT, epochs=1, lr=3e-4), tmp_path / "v")  # inputs changed: trained again
    assert not changed.skipped and not changed.history.equals(h)


def test_efficient_mode_does_no_extra_forwards(tmp_path: Path, monkeypatch) -> None:
    real = run_state.create_model
    counts = {}

    def counting(*args, **kwargs):
        model = real(*args, **kwargs)
        model.register_forward_hook(
            lambda m, inp, out: counts[key].append(len(inp[0])) if m.training else None)
        return model

    monkeypatch.setattr(run_state, "create_model", counting)
    for key, cfg in [("B", config(epochs=1)), ("efficient", config(**VARIANT, epochs=1, knns_mode="efficient")),
                     ("faithful", config(**VARIANT, epochs=1))]:
        counts[key] = []
        run(cfg, tmp_path / key)
    assert counts["B"] == [8] * 4  # one forward of the anchors per step
    assert counts["efficient"] == [32] + [8] * 4  # the bank's warm start (32 training rows), then as B
    assert counts["faithful"] == [8 * (1 + 2)] * 4  # anchors + K=2 neighbours each


def test_bank_statistics_and_warm_start(tmp_path: Path) -> None:
    h = run(config(**VARIANT, epochs=2, knns_mode="efficient"), tmp_path / "e").history
    assert (h["bank_unseen"] == 0).all()  # warm-started: no neighbour read hits an empty row
    assert (h["bank_age_mean"] > 0).all() and (h["bank_age_max"] >= h["bank_age_mean"]).all()
    assert (h["bank_age_max"] <= 2).all()  # written at epoch time 0 at the latest, read before time 2
    faithful = run(config(**VARIANT, epochs=1), tmp_path / "f").history
    assert "bank_age_mean" not in faithful.columns


def test_monitor_columns_do_not_choose_the_epoch(tmp_path: Path) -> None:
    data = make_data()
    flipped = 1.0 - data["targets"]  # a monitor that disagrees with validation must not change the choice
    plain = run(config(epochs=2), tmp_path / "plain", data)
    watched = run(config(epochs=2), tmp_path / "watched", data,
                  monitor={"train_mined": (data["train_index"], data["targets"][data["train_index"]]),
                           "val_flipped": (data["val_index"], flipped[data["val_index"]])})
    assert {"monitor_train_mined", "monitor_val_flipped"} <= set(watched.history.columns)
    np.testing.assert_allclose(watched.history["monitor_val_flipped"], 1 - watched.history["val_auc"], atol=1e-9)
    assert watched.best_epoch == plain.best_epoch
    for name, p in plain.model.state_dict().items():
        assert torch.equal(p, watched.model.state_dict()[name]), name


def test_checkpoint_write_is_atomic(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1})

    def broken_save(obj, f):
        Path(f).write_bytes(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint(path, {"epoch": 2})
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_predict_and_load_model(tmp_path: Path) -> None:
    data = make_data()
    result = run(config(epochs=1), tmp_path / "r", data)
    probs = predict(load_model(tmp_path / "r"), data["images"], data["val_index"], CROP, batch_size=5)
    assert probs.shape == (16, C) and ((probs > 0) & (probs < 1)).all()
    same = predict(result.model, data["images"], data["val_index"], CROP)  # other batch size: float rounding
    np.testing.assert_allclose(probs, same, rtol=0, atol=1e-6)


def test_config_from_profile_variants() -> None:
    p = get_profile("cpu")
    b = TrainConfig.from_profile(p, p.target_arch, seed=1)
    full = TrainConfig.from_profile(p, p.target_arch, seed=1, variant="B+MODL+KNNS", knns_mode="efficient")
    assert (b.lambda_modl, b.gamma_knns) == (0.0, 0.0)
    assert (full.lambda_modl, full.gamma_knns, full.knns_mode) == (p.lambda_modl, p.gamma_knns, "efficient")
    assert full.knns_k_reduction == p.knns_k_reduction == "sum"
    assert (b.crop, b.batch_size, b.lr_gamma, b.seed) == (p.crop, p.batch_size, p.lr_gamma, 1)
    with pytest.raises(ValueError):
        TrainConfig.from_profile(p, "resnet10t", seed=0, variant="MODL")


def test_pools_are_remapped_to_image_rows_for_a_shuffled_training_split(tmp_path: Path) -> None:
    """Pools index positions in train_index; the trainer must turn them into image rows. With a
    shuffled, non-contiguous train_index a missing or wrong remapping loads other images."""
    data = make_data()
    rng = np.random.default_rng(1)
    train_index = rng.permutation(np.arange(0, N, 3).tolist() + np.arange(1, N, 3).tolist())  # 32 rows
    val_index = np.setdiff1d(np.arange(N), train_index)
    pools = neighbour_pools(data["soft_labels"][train_index], 4, sigma=1.0)
    built = run_state.RunData.build(data["images"], train_index, val_index, data["targets"], None,
                                    data["soft_labels"], pools, None, None, None)
    np.testing.assert_array_equal(built.pool_index[train_index].numpy(), train_index[pools[0]])
    np.testing.assert_allclose(built.pool_sim[train_index].numpy(), pools[1])

    images = Recorder(data["images"])
    fit(config(**VARIANT), images, train_index, val_index, data["targets"], None, tmp_path / "f",
        soft_labels=data["soft_labels"], pools=pools, progress=False)
    pool_of = {row: set(train_index[pools[0][i]]) for i, row in enumerate(train_index)}
    # faithful steps load 8 anchors, then 2 neighbours each (validation loads the 16 other rows)
    steps = [c for c in images.calls if len(c) == 8 * (1 + 2)]
    assert steps
    for call in steps:
        anchors, neighbours = call[:8], call[8:].reshape(8, 2)
        assert set(anchors) <= set(train_index)
        assert all(set(nb) <= pool_of[a] for a, nb in zip(anchors, neighbours))


def test_fit_learns_an_easy_problem(tmp_path: Path) -> None:
    """Clean-label AUC well above chance after a few epochs on a separable problem (seconds on a CPU)."""
    rng = np.random.default_rng(0)
    n = 160
    targets = (rng.random((n, C)) < 0.4).astype(np.float32)
    pixels = rng.integers(0, 120, (n, SIZE, SIZE)).astype(np.float32)
    for j in range(C):
        pixels[:, 6 * j : 6 * j + 6, :] += 100 * targets[:, j, None, None]
    result = fit(config(epochs=4, lr_step_epochs=2), ArrayImages(pixels.astype(np.uint8)), np.arange(128),
                 np.arange(128, n), targets, None, tmp_path / "easy", progress=False)
    assert result.best_auc > 0.9, result.history[["epoch", "bce", "val_auc"]]


def test_a_checkpoint_holding_a_pickled_object_is_refused(tmp_path: Path) -> None:
    import pickle

    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1, "payload": Recorder(ArrayImages(np.zeros((1, 2, 2), np.uint8)))})
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(path)
    assert run_context.resumable_checkpoint(path, "any") is None  # a run there starts over instead


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_model_and_batches_are_channels_last_on_cpu_and_cuda(device: str) -> None:
    assert memory_format(device) == memory_format(torch.device(device)) == torch.channels_last


def test_channels_last_logits_match_contiguous_on_cpu() -> None:
    """Same weights, same input: the layouts differ by float rounding only (eval and train mode)."""
    torch.manual_seed(0)
    contiguous = create_model("densenet_tiny", 14, in_chans=1, head="pcam")
    nhwc = create_model("densenet_tiny", 14, in_chans=1, head="pcam").to(memory_format=torch.channels_last)
    nhwc.load_state_dict(contiguous.state_dict())
    x = torch.randn(8, 1, 56, 56)
    for mode in ("eval", "train"):
        with torch.no_grad():
            a = getattr(contiguous, mode)()(x)
            b = getattr(nhwc, mode)()(x.contiguous(memory_format=torch.channels_last))
        assert ((a - b).abs().max() / a.abs().max()).item() < 1e-4
