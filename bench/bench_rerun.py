"""A rerun's predictions: computed (cold) against loaded from the run folder (cached), side by side.

Issue 21: a rerun with nothing changed should cost little more than the kernel starts, yet notebooks
05-08 called :func:`paperkit.pipeline.experiment.probabilities` for every run on every rerun. This bench
generates a tiny benchmark with the smoke profile's settings under a temporary ``PAPERKIT_RESULTS``,
trains one run, then times ``probabilities`` on the same rows with the run's ``predictions/``
folder removed before each call (cold: load the checkpoint, predict, store) and present (cached:
check the key, load the ``.npy``), interleaved repeat by repeat so a load on the machine falls on
both alike; each figure is the median over the repeats. The run is passed as its folder, as
notebooks that re-request a run get it; cold then includes loading the checkpoint. The same for
:func:`paperkit.pipeline.experiment.evaluate` (patient bootstrap CIs, ``--bootstrap`` resamples) on the
test predictions, its ``evaluations/`` folder removed before each cold call.

    python bench/bench_rerun.py
    python bench/bench_rerun.py --n-images 600 --arch densenet_tiny --rows test --repeats 9
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=240, help="benchmark images (the smoke profile's 240)")
    parser.add_argument("--arch", default="densenet_tiny", help="the run's architecture (the smoke target's)")
    parser.add_argument("--rows", choices=["test", "all"], default="all",
                        help="rows predicted: the test split (tables) or every row (soft labels)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats of each (interleaved)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bootstrap", type=int, default=1000, help="evaluate's resamples (the paper profiles' 1000)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="AUC is n/a")  # a tiny test split lacks some findings

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PAPERKIT_RESULTS"] = tmp
        os.environ.pop("PAPERKIT_FORCE_SINCE", None)
        from paperkit.config import resolve
        from paperkit.paths import RunPaths
        from paperkit.pipeline import experiment as ex
        from paperkit.training import predictions

        cfg = resolve("smoke", {"n_images": args.n_images, "epochs": 1, "layouts": "nih", "device": "cpu",
                                "num_threads": args.threads, "bootstrap": args.bootstrap})
        paths = RunPaths.for_profile(cfg)
        start = time.perf_counter()
        prep = ex.prepare(cfg, paths, "nih")
        run = ex.train_run(cfg, paths, prep, args.arch, 0)
        setup = time.perf_counter() - start
        rows = prep.rows("test") if args.rows == "test" else np.arange(len(prep.dataset))
        folder = run.run_dir / predictions.FOLDER
        print(f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads; {args.arch}, {cfg.resize} -> "
              f"{cfg.crop} px, {len(rows)} rows ({args.rows}); benchmark + 1 epoch in {setup:.1f} s")

        def cold() -> np.ndarray:
            shutil.rmtree(folder, ignore_errors=True)
            return ex.probabilities(cfg, run.run_dir, prep, rows)

        def cached() -> np.ndarray:
            return ex.probabilities(cfg, run.run_dir, prep, rows)

        test_probs = {"B": ex.probabilities(cfg, run.run_dir, prep, prep.rows("test"))}

        def cold_eval():
            shutil.rmtree(paths.evaluations, ignore_errors=True)
            return ex.evaluate(cfg, prep, test_probs)

        def cached_eval():
            return ex.evaluate(cfg, prep, test_probs)

        reference = cold()  # warm-up (allocation, oneDNN kernel choice) and the first stored file
        assert np.array_equal(cached(), reference), "stored predictions differ from computed ones"
        reference_eval = cold_eval()
        times: dict[str, list[float]] = {k: [] for k in ("cold", "cached", "cold_eval", "cached_eval")}
        for _ in range(args.repeats):
            for name, call in (("cold", cold), ("cached", cached), ("cold_eval", cold_eval),
                               ("cached_eval", cached_eval)):
                t0 = time.perf_counter()
                out = call()
                times[name].append(time.perf_counter() - t0)
                if "eval" in name:
                    assert out.auc.equals(reference_eval.auc), "stored evaluation differs from the computed one"
                else:
                    assert np.array_equal(out, reference), "stored predictions differ from computed ones"

    print(f"{'':<26}{'cold s':>10}{'cached s':>10}{'ratio':>9}   (medians; min-max cold, cached)")
    for label, key in ((f"probabilities ({len(rows)} rows)", ""), (f"evaluate ({args.bootstrap} boot)", "_eval")):
        c, w = times["cold" + key], times["cached" + key]
        print(
            f"{label:<26}{statistics.median(c):>10.4f}{statistics.median(w):>10.4f}"
            f"{statistics.median(c) / statistics.median(w):>8.0f}x   "
            f"({min(c):.3f}-{max(c):.3f}, {min(w):.4f}-{max(w):.4f})"
        )
    print(f"{args.repeats} repeats each, interleaved")


if __name__ == "__main__":
    main()
