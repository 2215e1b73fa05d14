"""Table 3's cost columns at paper scale: parameters and inference img/s of the target and the six
references, float32 vs bf16 autocast + channels_last side by side, and the two ensembles.

Models are built from scratch (timm, no download; weights do not change the speed), one grey
channel, 14 outputs, 224 px. Each figure is the median of timed passes after two warm-up passes
(:func:`paperkit.training.inference.inference_throughput`); an ensemble runs its members one after another, so
its img/s is ``1 / sum(1 / member img/s)``. Then neighbour pools (eq. 3) over ``--pool-rows`` soft
labels (default: 224,316, every CheXpert radiograph, the larger of the paper's datasets) are timed
on the same device.

    python bench/bench_throughput.py --device cuda              # a GPU
    python bench/bench_throughput.py --device cpu --size 64 --archs densenet121 --pool-rows 20000
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from paperkit.config import PAPER_REFERENCES
from paperkit.method.knn import neighbour_pools
from paperkit.models import create_model
from paperkit.training.inference import inference_throughput


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(PAPER_REFERENCES))  # densenet121 is also the target
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--pool-rows", type=int, default=224_316)
    parser.add_argument("--k", type=int, default=9)
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    name = torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}; {args.size} px, batch {args.batch_size}, median of {args.passes}")
    print(f"{'model':<22}{'params M':>9}{'fp32 img/s':>12}{'bf16+CL img/s':>15}{'x fp32':>8}")
    rates: dict[str, tuple[float, float]] = {}
    for arch in args.archs:
        model = create_model(arch, 14, in_chans=1, head="pcam")
        params = sum(p.numel() for p in model.parameters()) / 1e6
        shape = (1, args.size, args.size)
        fp32 = inference_throughput(model, shape, batch_size=args.batch_size, n_batches=args.passes, device=args.device)
        fast = fp32
        if cuda:  # the path train.predict takes on CUDA
            model.to(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16):
                fast = inference_throughput(model, shape, batch_size=args.batch_size, n_batches=args.passes,
                                            device=args.device)
        rates[arch] = (fp32, fast)
        print(f"{arch:<22}{params:>9.1f}{fp32:>12.0f}{fast:>15.0f}{fast / fp32:>8.2f}", flush=True)
        del model
    ensembles = {"Ensemble 1 (DenseNets)": [a for a in PAPER_REFERENCES[:3] if a in rates],
                 "Ensemble 2 (six)": [a for a in PAPER_REFERENCES if a in rates]}
    for label, members in ensembles.items():
        if len(members) > 1:
            combined = [1 / sum(1 / rates[a][j] for a in members) for j in (0, 1)]
            print(f"{label:<22}{'':>9}{combined[0]:>12.0f}{combined[1]:>15.0f}{combined[1] / combined[0]:>8.2f}")

    soft = np.random.default_rng(0).random((args.pool_rows, 14)).astype(np.float32)
    neighbour_pools(soft[:2000], args.k, device=args.device)  # warm-up
    start = time.perf_counter()
    neighbour_pools(soft, args.k, device=args.device)
    print(f"neighbour pools: {args.pool_rows:,} rows x 14, K = {args.k}, on {args.device}: "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
