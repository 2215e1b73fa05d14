"""Correctness of paperkit's CUDA path: channels_last, bf16 autocast, CUDA training, resume, predict.

The test suite runs on CPU only (CI has no GPU); run this on a CUDA machine after installing:

    python scripts/gpu_check.py [--out DIR]

Each check prints one line, ``PASS`` or ``FAIL``, with the measured numbers and the tolerance; the
script exits 1 if any check fails. CUDA runs are not bit-reproducible (cudnn.benchmark picks kernels
per run, atomics in backward), so training checks compare AUCs within stated tolerances, not bytes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

import paperkit.training.loop as train
import paperkit.training.state as run_state
from paperkit.config import get_profile
from paperkit.models import create_model
from paperkit.paths import RunPaths
from paperkit.pipeline import experiment
from paperkit.training.checkpoint import save_checkpoint

RESULTS: list[dict] = []


def check(name: str, ok: bool, detail: str) -> None:
    RESULTS.append({"check": name, "ok": bool(ok), "detail": detail})
    print(f"{'PASS' if ok else 'FAIL'}  {name}: {detail}", flush=True)


def channels_last_matches(device: str, arch: str, size: int) -> None:
    """Same weights, same input: channels_last and contiguous float32 logits agree."""
    torch.manual_seed(0)
    model = create_model(arch, 14, in_chans=1, head="pcam").to(device).eval()
    x = torch.randn(8, 1, size, size, device=device)
    with torch.inference_mode():
        a = model(x)
        b = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    rel = ((a - b).abs().max() / a.abs().max()).item()
    check(f"channels_last == contiguous ({arch}, fp32)", rel < 1e-4, f"max rel diff {rel:.1e} (tol 1e-4)")


def bf16_step_matches(device: str, arch: str, size: int) -> None:
    """One training step's loss and gradient under bf16 autocast vs float32 (same weights, batch)."""
    torch.manual_seed(0)
    model = create_model(arch, 14, in_chans=1, head="pcam").to(device, memory_format=torch.channels_last)
    x = torch.randn(16, 1, size, size, device=device).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(16, 14, device=device) < 0.2).float()

    def step(amp: bool) -> tuple[float, torch.Tensor]:
        model.zero_grad()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x).float()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        loss.backward()
        return loss.item(), torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])

    (l32, g32), (l16, g16) = step(False), step(True)
    cos = torch.nn.functional.cosine_similarity(g32, g16, dim=0).item()
    rel = abs(l16 - l32) / abs(l32)
    # bf16 keeps 8 mantissa bits: through 121 layers single gradient entries differ by percents
    # (CPU autocast gives a cosine of 0.92), so this catches a broken setup, not rounding
    check(f"bf16 autocast step ~ float32 ({arch})", rel < 1e-2 and cos > 0.85,
          f"loss rel diff {rel:.1e} (tol 1e-2), gradient cosine {cos:.4f} (tol > 0.85)")


def training_runs(device: str, out: Path, n_images: int, epochs: int) -> None:
    """The embedded benchmark trained on CUDA (bf16 and float32) and on CPU: AUCs agree."""
    cfg = dataclasses.replace(get_profile("cpu"), n_images=n_images, epochs=epochs, layouts=("nih",))
    paths = RunPaths(out / "results")
    t = time.perf_counter()
    prep = experiment.prepare(cfg, paths, "nih")
    print(f"      benchmark of {cfg.n_images} images ready in {time.perf_counter() - t:.1f} s", flush=True)
    test = prep.rows("test")

    def run(name: str, variant: str = "B", **changes) -> tuple[float, train.TrainResult]:
        t = time.perf_counter()
        soft = experiment.soft_labels(cfg, paths, prep, {"ref": ref}) if variant != "B" else None
        pools = experiment.pools(cfg, paths, prep, soft, cfg.k) if variant != "B" else None
        result = experiment.train_run(cfg, paths, prep, name, "densenet_tiny", 0, variant, soft=soft, pools=pools,
                                      **changes)
        probs = experiment.probabilities(dataclasses.replace(cfg, device=changes["device"]), result, prep, test)
        auc = experiment.evaluate(cfg, prep, {"m": probs}, reference=None).mean_auc("m")
        print(f"      {name}: clean test AUC {100 * auc:.2f}, {time.perf_counter() - t:.1f} s", flush=True)
        return auc, result

    ref = None
    a_bf16, ref = run("B-cuda-bf16", device=device, amp=True)
    a_fp32, _ = run("B-cuda-fp32", device=device, amp=False)
    a_cpu, _ = run("B-cpu", device="cpu")
    spread = 100 * (max(a_bf16, a_fp32, a_cpu) - min(a_bf16, a_fp32, a_cpu))
    check("B trains on CUDA like on CPU", min(a_bf16, a_fp32, a_cpu) > 0.7 and spread < 3,
          f"clean test AUC bf16 {100 * a_bf16:.2f}, fp32 {100 * a_fp32:.2f}, CPU {100 * a_cpu:.2f}; "
          f"spread {spread:.2f} (tol < 3, seed-to-seed sd here is ~0.3-1)")
    for mode in ("efficient", "faithful"):
        auc, result = run(f"MK-cuda-{mode}", "B+MODL+KNNS", device=device, knns_mode=mode)
        terms = result.history[["bce", "modl", "knns"]].to_numpy()
        check(f"B+MODL+KNNS ({mode}) on CUDA", np.isfinite(terms).all() and (terms[:, 1:] > 0).all() and auc > 0.7,
              f"AUC {100 * auc:.2f}; last epoch BCE/KL/KNNS {np.round(terms[-1], 4).tolist()}")

    # resume on CUDA: die right after the middle epoch's checkpoint, rerun, compare with the straight run
    def save_then_die(path, state):
        save_checkpoint(path, state)
        if Path(path).name == "last.pt" and state["epoch"] == epochs // 2:
            raise KeyboardInterrupt("killed mid-run")

    run_state.save_checkpoint = save_then_die
    try:
        run("B-cuda-resumed", device=device)
    except KeyboardInterrupt:
        pass
    finally:
        run_state.save_checkpoint = save_checkpoint
    a_res, resumed = run("B-cuda-resumed", device=device)
    done = resumed.history["epoch"].tolist()
    check("killed CUDA run resumes", done == list(range(1, cfg.epochs + 1)) and abs(a_res - a_bf16) < 0.015,
          f"epochs {done}; AUC {100 * a_res:.2f} vs straight {100 * a_bf16:.2f} "
          "(tol 1.5: CUDA kernels are not bit-reproducible)")

    probs_gpu = experiment.probabilities(dataclasses.replace(cfg, device=device), ref, prep, test)
    probs_cpu = experiment.probabilities(dataclasses.replace(cfg, device="cpu"), ref, prep, test)
    diff = float(np.abs(probs_gpu - probs_cpu).max())
    check("predict on CUDA (bf16) ~ CPU (fp32)", diff < 0.03, f"max |p_cuda - p_cpu| {diff:.4f} (tol 0.03)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep results and gpu_check.json here")
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script itself")
    parser.add_argument("--n-images", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check (this script is for GPU machines; --device cpu dry-runs it)")
        return 1
    name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    print(f"torch {torch.__version__}, {name}", flush=True)
    torch.backends.cudnn.allow_tf32 = False  # float32 means float32 below (cuDNN allows TF32 by default)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp)
        d = args.device
        for fn, fargs in (
            (channels_last_matches, (d, "densenet121", 224)),
            (channels_last_matches, (d, "densenet_tiny", 56)),
            (bf16_step_matches, (d, "densenet121", 224)),
            (training_runs, (d, out, args.n_images, args.epochs)),
        ):
            try:
                fn(*fargs)
            except Exception:  # one broken check must not hide the others' results
                check(f"{fn.__name__}{fargs[1:3]}", False, traceback.format_exc(limit=4))
        if args.out:
            (args.out / "gpu_check.json").write_text(json.dumps(RESULTS, indent=1))
    return 0 if all(r["ok"] for r in RESULTS) else 1


if __name__ == "__main__":
    raise SystemExit(main())
