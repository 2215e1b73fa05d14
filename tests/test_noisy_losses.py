"""Label-noise methods as L_cls: each built-in against a direct float64 formula, gradients, ELR's state,
the registry, run identity (B keeps its folder) and a reader's method trained through the one loop."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import paperkit.method.noisy_losses as nl
import paperkit.training.context as run_context
from paperkit.config import resolve
from paperkit.method.losses import bce_loss
from paperkit.method.noisy_losses import ELR_BETA, ELR_CLAMP, get_method, methods, register_method
from paperkit.pipeline.specs import ALL_REFERENCES, SoftLabels, dataset_key, run_spec
from paperkit.training.checkpoint import load_checkpoint, save_checkpoint
from paperkit.training.loop import TrainConfig, fit
from paperkit.training.state import ArrayImages, run_config

B, C = 7, 5


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _log_p(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log p and log(1 − p) of p = σ(z), exact in float64 for |z| up to 12."""
    return -np.logaddexp(0, -z), -np.logaddexp(0, z)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.zeros_like(x)
    pos = x > 0
    out[pos] = x[pos] * np.log(y[pos])
    return out


def _inputs(seed: int, soft_targets: bool, use_mask: bool):
    """float64 logits (p near 0, near 1 and between), hard or soft targets, a mask, soft labels, rows."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, (B, C))
    z.flat[::5] = rng.choice([-12.0, 12.0], size=z.flat[::5].shape)
    t = rng.uniform(0, 1, (B, C)) if soft_targets else (rng.random((B, C)) < 0.4).astype(float)
    if soft_targets:
        t.flat[::3] = rng.choice([0.0, 1.0], size=t.flat[::3].shape)
    mask = rng.random((B, C)) > 0.3 if use_mask else np.ones((B, C), bool)
    soft = rng.uniform(0, 1, (B, C))
    soft.flat[::4] = rng.choice([0.0, 1.0], size=soft.flat[::4].shape)
    rows = rng.permutation(20)[:B]
    return z, t, mask, soft, rows


def _call(name, z, t, mask, soft, rows, param=None, state=None, use_mask=True):
    method = get_method(name)
    return method.loss(torch.tensor(z), torch.tensor(t), torch.tensor(mask) if use_mask else None, torch.tensor(soft),
                       torch.tensor(rows), 0, method.resolve(param), {"n_rows": 20} if state is None else state)


def _ref(name: str, z, t, mask, soft, param: float) -> float:
    """The method's loss in float64, straight from the formula in its docstring."""
    p = _sigmoid(z)
    log_p, log_1mp = _log_p(z)
    if name == "bce":
        return float((-(t * log_p + (1 - t) * log_1mp))[mask].mean())
    if name == "kd":  # Bernoulli KL(l ‖ p), every element (it reads no label)
        return float((_xlogy(soft, soft) - soft * log_p + _xlogy(1 - soft, 1 - soft) - (1 - soft) * log_1mp).mean())
    if name == "gce":
        q = param
        return float((t * (1 - p**q) / q + (1 - t) * (1 - (1 - p) ** q) / q)[mask].mean())
    if name == "bootstrap_soft":  # Reed et al.'s form, not the β·BCE + (1−β)·H the code computes
        target = param * t + (1 - param) * p
        return float((-(target * log_p + (1 - target) * log_1mp))[mask].mean())
    if name == "elr":  # first visit from zero targets: t⁺ = (1−β)·p, t⁻ = (1−β)·(1−p), p clamped
        pc = np.clip(p, ELR_CLAMP, 1 - ELR_CLAMP)
        pos, neg = (1 - ELR_BETA) * pc, (1 - ELR_BETA) * (1 - pc)
        reg = np.log(1 - pc * pos - (1 - pc) * neg).mean()
        return float((-(t * log_p + (1 - t) * log_1mp))[mask].mean() + param * reg)
    raise AssertionError(name)


CASES = [("bce", None), ("kd", None), *[("gce", q) for q in (0.3, 0.7, 1.0)],
         *[("bootstrap_soft", b) for b in (0.8, 0.95)], *[("elr", lam) for lam in (1.0, 3.0)]]


@pytest.mark.parametrize("name, param", CASES)
@pytest.mark.parametrize("soft_targets", [False, True])
@pytest.mark.parametrize("use_mask", [False, True])
def test_builtin_matches_numpy(name: str, param: float | None, soft_targets: bool, use_mask: bool) -> None:
    z, t, mask, soft, rows = _inputs(
        4 * CASES.index((name, param)) + 2 * soft_targets + use_mask, soft_targets, use_mask
    )
    param = get_method(name).resolve(param)
    got = _call(name, z, t, mask, soft, rows, param, use_mask=use_mask)
    assert got.dim() == 0
    assert got.item() == pytest.approx(_ref(name, z, t, mask, soft, param), rel=1e-10, abs=1e-12)


def test_defaults_and_grids_are_the_stated_ones() -> None:
    expected = {
        "bce": (None, ()),
        "kd": (None, ()),
        "gce": (0.7, (0.3, 0.5, 0.7, 0.9)),
        "bootstrap_soft": (0.95, (0.8, 0.9, 0.95)),
        "elr": (3.0, (1.0, 3.0, 7.0)),
        "coteaching": (0.2, (0.1, 0.2, 0.4)),
    }
    for name, (default, grid) in expected.items():
        assert (get_method(name).default, get_method(name).grid) == (default, grid), name
    assert methods()[:6] == list(expected) and get_method("kd").needs_soft


@pytest.mark.parametrize("name", ["bce", "kd", "gce", "bootstrap_soft", "elr"])
def test_gradients_are_finite_at_extreme_logits(name: str) -> None:
    z = torch.tensor([[-60.0, -20.0, 0.0, 20.0, 60.0]] * 4, requires_grad=True)
    t = torch.tensor([[0.0, 1.0, 0.5, 0.0, 1.0]] * 4)
    method = get_method(name)
    loss = method.loss(z, t, None, torch.rand(4, 5), torch.arange(4), 0, method.default, {"n_rows": 4})
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


def test_bce_is_losses_bce_loss_exactly() -> None:
    rng = torch.Generator().manual_seed(0)
    z, t = torch.randn(16, 14, generator=rng) * 4, torch.rand(16, 14, generator=rng)
    mask = torch.rand(16, 14, generator=rng) > 0.2
    for m in (None, mask):
        got = get_method("bce").loss(z, t, m, None, torch.arange(16), 3, None, {})
        assert torch.equal(got, bce_loss(z, t, m))


@pytest.mark.parametrize("name, param", [("gce", 0.3), ("gce", 1.0), ("bootstrap_soft", 0.8), ("kd", None)])
def test_gradient_matches_finite_differences(name: str, param: float | None) -> None:
    """Autograd equals the loss's own finite differences: in particular bootstrapping's p is not detached."""
    z, t, mask, soft, rows = _inputs(3, True, True)
    z = np.clip(z, -6, 6)  # gradcheck's finite differences in float64, away from saturation
    m = get_method(name)

    def fn(logits):
        return m.loss(
            logits, torch.tensor(t), torch.tensor(mask), torch.tensor(soft), torch.tensor(rows), 0, m.resolve(param), {}
        )

    assert torch.autograd.gradcheck(fn, (torch.tensor(z, requires_grad=True),))


def test_bootstrap_gradient_is_not_beta_times_bce() -> None:
    """Detaching p would give β·(p − t); Reed's soft bootstrapping adds the entropy's −(1−β)·z·p(1−p)."""
    z, t, mask, soft, rows = _inputs(4, False, False)
    zt = torch.tensor(z, requires_grad=True)
    get_method("bootstrap_soft").loss(zt, torch.tensor(t), None, None, torch.tensor(rows), 0, 0.8, {}).backward()
    p = _sigmoid(z)
    np.testing.assert_allclose(zt.grad.numpy(), (0.8 * (p - t) - 0.2 * z * p * (1 - p)) / z.size, rtol=1e-9, atol=1e-15)


def test_elr_state_update_and_gradient() -> None:
    """Targets start at 0 and follow t⁺ ← β t⁺ + (1−β) p, t⁻ ← β t⁻ + (1−β)(1−p) for the rows trained on
    only; the regulariser's gradient treats them as constants."""
    rng = np.random.default_rng(5)
    state = {"n_rows": 20}
    rows = np.array([3, 7, 11, 0])
    t = (rng.random((4, C)) < 0.5).astype(float)
    pos = np.zeros((20, C))
    neg = np.zeros((20, C))
    for visit in range(3):
        z = rng.normal(0, 2, (4, C))
        zt = torch.tensor(z, requires_grad=True)
        loss = nl.elr(zt, torch.tensor(t), None, None, torch.tensor(rows), visit, 3.0, state)
        loss.backward()
        pc = np.clip(_sigmoid(z), ELR_CLAMP, 1 - ELR_CLAMP)
        pos[rows] = ELR_BETA * pos[rows] + (1 - ELR_BETA) * pc
        neg[rows] = ELR_BETA * neg[rows] + (1 - ELR_BETA) * (1 - pc)
        np.testing.assert_allclose(state["elr_pos"].numpy(), pos, rtol=1e-12)
        np.testing.assert_allclose(state["elr_neg"].numpy(), neg, rtol=1e-12)
        np.testing.assert_allclose(pos[rows] + neg[rows], 1 - ELR_BETA ** (visit + 1), rtol=1e-12)  # mass 1 − β^n
        p = _sigmoid(z)
        inner = 1 - pc * pos[rows] - (1 - pc) * neg[rows]
        grad = (p - t) / t.size + 3.0 * (-(pos[rows] - neg[rows]) * p * (1 - p) / inner) / t.size
        np.testing.assert_allclose(zt.grad.numpy(), grad, rtol=1e-9, atol=1e-15)
    untouched = np.setdiff1d(np.arange(20), rows)
    assert (state["elr_pos"][untouched] == 0).all() and (state["elr_neg"][untouched] == 0).all()


def test_registry_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown method 'nope'; registered: .*bce.*elr.*gce"):
        get_method("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_method("bce", nl.bce)
    with pytest.raises(ValueError, match="'bce' takes no parameter"):
        get_method("bce").resolve(0.5)
    with pytest.raises(ValueError, match="0 < q <= 1"):
        _call("gce", *_inputs(0, False, False), param=0.0)


# --- run identity ------------------------------------------------------------------------------

CPU = resolve("cpu")
CPU_KEY = dataset_key(CPU, "nih")


def test_bce_runs_keep_their_identity_and_folder() -> None:
    """run_config of a BCE run is what it was before methods existed, so every existing folder keeps its name."""
    spec = run_spec(CPU, CPU_KEY, CPU.uncertain_policy, CPU.target_arch, 0, "B")
    assert spec.folder == "nih-seed20261202/B-densenet_tiny-s0-e3855a7f"  # computed before the registry existed
    before = dataclasses.asdict(spec.config)
    for key in ("num_threads", "method", "method_param"):
        before.pop(key)
    assert run_config(spec.config) == before
    assert run_spec(CPU, CPU_KEY, CPU.uncertain_policy, CPU.target_arch, 0, "B", changes={"method": "bce"}) == spec


def test_a_method_and_its_parameter_name_the_run() -> None:
    def folder(**changes):
        return run_spec(CPU, CPU_KEY, CPU.uncertain_policy, CPU.target_arch, 0, "B", changes=changes).folder

    b, gce = folder(), folder(method="gce")
    assert (
        len({b, gce, folder(method="gce", method_param=0.3), folder(method="elr"), folder(method="bootstrap_soft")})
        == 5
    )
    assert folder(method="gce", method_param=0.7) == gce  # the default named is the default left out
    assert "method=gce" in gce and "method_param" not in gce
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        folder(method="nope")


def test_kd_reads_the_soft_labels_so_they_name_it() -> None:
    soft = SoftLabels.of(CPU, CPU_KEY, ALL_REFERENCES, [f"{CPU_KEY}/B-a-s0-00000000"])
    other = SoftLabels.of(CPU, CPU_KEY, ALL_REFERENCES, [f"{CPU_KEY}/B-b-s0-11111111"])
    kd = [
        run_spec(CPU, CPU_KEY, CPU.uncertain_policy, CPU.target_arch, 0, "B", soft=s, changes={"method": "kd"})
        for s in (soft, other)
    ]
    assert kd[0].soft == soft.identity and kd[0].folder != kd[1].folder


# --- the one loop ------------------------------------------------------------------------------

N, SIZE, CROP = 48, 20, 16


def _data(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    targets = (rng.random((N, C)) < 0.4).astype(np.float32)
    images = rng.integers(0, 120, (N, SIZE, SIZE)).astype(np.float32)
    for j in range(C):
        images[:, 4 * j : 4 * j + 4, :] += 100 * targets[:, j, None, None]
    soft = np.clip(0.7 * targets + 0.3 * rng.random((N, C)), 0, 1).astype(np.float32)
    return dict(
        images=ArrayImages(images.astype(np.uint8)),
        train_index=np.arange(32),
        val_index=np.arange(32, N),
        targets=targets,
        mask=None,
        soft_labels=soft,
    )


def _fit(config: TrainConfig, run_dir: Path, data: dict | None = None):
    data = data or _data()
    return fit(
        config,
        data["images"],
        data["train_index"],
        data["val_index"],
        data["targets"],
        data["mask"],
        run_dir,
        soft_labels=data["soft_labels"],
        progress=False,
    )


def _sce(logits, targets, mask, soft, rows, epoch, param, state):
    """Symmetric cross entropy (Wang et al. 2019) per class: BCE + β·RCE.

    RCE = −[p·log t + (1−p)·log(1−t)], log 0 := −4.
    """
    p = torch.sigmoid(logits)
    t = targets.to(p.dtype)
    log_t, log_1mt = (x.clamp_min(1e-12).log().clamp_min(-4.0) for x in (t, 1 - t))
    rce = -(p * log_t + (1 - p) * log_1mt)
    keep = torch.ones_like(p) if mask is None else mask.to(p.dtype)
    return bce_loss(logits, targets, mask) + param * (rce * keep).sum() / keep.sum().clamp_min(1)


def test_a_registered_method_trains_through_fit_in_its_own_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(nl, "_REGISTRY", dict(nl._REGISTRY))  # the toy leaves the registry as it found it
    register_method("sce_toy", _sce, default=1.0, grid=(0.5, 1.0))
    cfg = resolve("smoke", {"batch_size": 8, "crop": CROP, "device": "cpu", "epochs": 2})
    key = dataset_key(cfg, "nih")
    b = run_spec(cfg, key, cfg.uncertain_policy, "densenet_tiny", 0, "B")
    sce = run_spec(cfg, key, cfg.uncertain_policy, "densenet_tiny", 0, "B", changes={"method": "sce_toy"})
    assert sce.folder != b.folder and "method=sce_toy" in sce.name
    config = dataclasses.replace(sce.config, num_threads=1)
    result = _fit(config, tmp_path / sce.folder)
    assert not result.skipped and list(result.history["epoch"]) == [1, 2]
    assert np.isfinite(result.history[["loss", "bce", "val_auc"]].to_numpy()).all()
    assert (tmp_path / sce.folder / "manifest.json").is_file()
    assert load_checkpoint(tmp_path / sce.folder / "last.pt")["config"]["method"] == "sce_toy"
    assert _fit(config, tmp_path / sce.folder).skipped


def _small(**changes) -> TrainConfig:
    return TrainConfig(
        arch="resnet10t",
        head="pcam",
        batch_size=8,
        epochs=2,
        lr_step_epochs=1,
        crop=CROP,
        device="cpu",
        num_threads=1,
        **changes,
    )


def test_elr_state_is_checkpointed_and_resume_is_exact(tmp_path: Path, monkeypatch) -> None:
    cfg = _small(method="elr")
    straight = _fit(cfg, tmp_path / "straight")

    def save_then_die(path, state):
        save_checkpoint(path, state)
        if Path(path).name == "last.pt":
            raise KeyboardInterrupt("killed after epoch 1")

    monkeypatch.setattr(run_context, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        _fit(cfg, tmp_path / "resumed")
    monkeypatch.undo()
    _fit(cfg, tmp_path / "resumed")
    a, b = (load_checkpoint(tmp_path / d / "last.pt") for d in ("straight", "resumed"))
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    for k in ("elr_pos", "elr_neg"):
        assert torch.equal(a["method_state"][k], b["method_state"][k])
        assert (a["method_state"][k][:32] > 0).all() and (a["method_state"][k][32:] == 0).all()  # training rows only
    assert np.isfinite(straight.history["bce"]).all()  # L_cls = BCE + λ·log(…) may be negative


def test_method_inputs_are_checked_before_training(tmp_path: Path) -> None:
    data = _data()
    data["soft_labels"] = None
    with pytest.raises(ValueError, match="method 'kd' needs soft_labels"):
        _fit(_small(method="kd"), tmp_path / "kd", data)
    with pytest.raises(ValueError, match="unknown method 'nope'"):
        _fit(_small(method="nope"), tmp_path / "nope")
    with pytest.raises(ValueError, match="'kd' takes no parameter"):
        _fit(_small(method="kd", method_param=1.0), tmp_path / "kd2")


# --- co-teaching ----------------------------------------------------------------------------------


def _coteaching_numpy(za, zb, t, known, tau, epoch):
    """Co-teaching's loss from its definition, float64, element by element."""
    def bce(z):  # -[t log σ(z) + (1-t) log(1-σ(z))]
        return np.logaddexp(0, z) - t * z

    la, lb = bce(za.astype(np.float64)), bce(zb.astype(np.float64))
    rate = tau * min(epoch / 2, 1.0)

    def kept(loss):
        out = np.zeros_like(known)
        for c in range(t.shape[1]):
            for positive in (True, False):
                idx = [i for i in range(len(t)) if known[i, c] and (t[i, c] >= 0.5) == positive]
                n_keep = int(np.ceil((1 - rate) * len(idx)))
                for i in sorted(idx, key=lambda i: (loss[i, c], i))[:n_keep]:
                    out[i, c] = True
        return out

    by_a, by_b = kept(la), kept(lb)
    return la[by_b].mean() + lb[by_a].mean()


@pytest.mark.parametrize("epoch", [0, 1, 5])
@pytest.mark.parametrize("use_mask", [False, True])
def test_coteaching_matches_numpy(epoch: int, use_mask: bool) -> None:
    rng = np.random.default_rng(epoch)
    n, c = 24, 3
    za, zb = rng.normal(size=(n, c)) * 2, rng.normal(size=(n, c)) * 2
    t = (rng.random((n, c)) < 0.3).astype(np.float32)
    known = rng.random((n, c)) < 0.8 if use_mask else np.ones((n, c), bool)
    method = get_method("coteaching")
    got = method.loss(torch.tensor(np.concatenate([za, zb], 1), dtype=torch.float32), torch.tensor(t),
                      torch.tensor(known) if use_mask else None, None, torch.arange(n), epoch, 0.4, {})
    assert got.item() == pytest.approx(_coteaching_numpy(za, zb, t, known, 0.4, epoch), rel=1e-5)
    assert method.peers == 2 and method.default == 0.2


def test_coteaching_trains_a_pair_and_scores_its_first_network(tmp_path: Path) -> None:
    from paperkit.models import PeerPair
    from paperkit.training.inference import load_model

    result = _fit(_small(method="coteaching"), tmp_path / "pair")
    model = load_model(result.run_dir)
    assert isinstance(model, PeerPair) and not model.training
    x = torch.zeros(2, 1, CROP, CROP)
    with torch.no_grad():
        assert torch.equal(model(x), model.first(x)) and not torch.equal(model.first(x), model.second(x))
    with pytest.raises(ValueError, match="coteaching.*lambda_modl = gamma_knns = 0"):
        _fit(_small(method="coteaching", lambda_modl=0.1), tmp_path / "modl")
