"""Preflight: in seconds, before any notebook runs, can this profile run here?

:func:`run_preflight` checks what would otherwise fail hours into a run, and collects every
problem rather than stopping at the first:

- the dataset (real data only): its root and layout, and the images its metadata lists against
  the files on disk. The loaders of :mod:`paperkit.data` read the metadata (``missing="keep"``), so
  the files are listed, never decoded. A missing image is a problem unless the profile says
  ``missing=skip``; the message names how many and that option.
- the device: ``device=cuda`` on a machine where torch sees no GPU; ``devices`` naming a GPU torch
  does not see (or any GPU, where the runs train on the CPU).
- free disk for what is not yet written: the image cache (``n_images x resize²`` bytes per dataset
  key), the rendered benchmark (at most ``n_images x render_size²`` bytes per draw) and the
  checkpoints of every planned run not yet finished (parameters x 4 bytes x 3 (weights and Adam's
  two moments) x 2 files).
- the weights: :func:`paperkit.orchestration.weights.check_pretrained`.

``runner.check_profile`` prints :meth:`PreflightReport.summary` and raises one
:class:`~paperkit.config.ConfigError` line per problem (exit 2).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paperkit.artifacts import read_manifest
from paperkit.config import ConfigError, Profile
from paperkit.paths import RunPaths
from paperkit.pipeline.plan import DataSize, data_sizes, parameter_count, planned_runs
from paperkit.pipeline.specs import dataset_key
from paperkit.training.workers import resolve_workers

#: Bytes a checkpointed parameter costs on disk: float32 x (weights + Adam's two moments) x 2 files
#: (best.pt holds the weights only, so this bounds it from above).
CHECKPOINT_BYTES_PER_PARAM = 4 * 3 * 2
#: Missing image names shown in a message.
SHOWN = 3


@dataclass(frozen=True)
class DataCount:
    """A user's dataset as its metadata lists it and as the disk holds it."""

    layout: str
    root: Path
    metadata: str  # the file(s) read
    expected: int  # images the metadata lists (after the profile's view filter)
    found: int  # of those, on disk
    first_missing: tuple[str, ...]
    image_folders: bool  # NIH: an images/ or images_0NN/images/ folder exists
    size: DataSize  # the rows training will use: all (missing=error) or those found (missing=skip)

    @property
    def missing(self) -> int:
        return self.expected - self.found


@dataclass
class PreflightReport:
    """What the preflight found: one summary block and the problems, one line each."""

    profile: Profile
    data: list[DataCount] = field(default_factory=list)
    device: str = ""
    disk_parts: dict[str, int] = field(default_factory=dict)  # bytes still to write, by kind
    disk_free: int = 0
    disk_path: Path = Path()
    weights: str = ""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def sizes(self) -> dict[str, DataSize]:
        """The counted datasets' sizes by layout (for :func:`paperkit.pipeline.plan.build_plan`)."""
        return {d.layout: d.size for d in self.data}

    @property
    def disk_needed(self) -> int:
        return sum(self.disk_parts.values())

    def summary(self) -> str:
        """The block printed before any work: dataset, images, device, disk, weights, notes."""
        cfg = self.profile
        lines = [f"preflight: profile {cfg.name!r}"]
        if cfg.dataset == "benchmark":
            lines.append(f"  dataset  embedded benchmark ({' + '.join(cfg.layouts)} layouts), {cfg.n_images:,} images "
                         f"each at {cfg.render_size} px, rendered by notebook 01")
        elif not self.data:
            lines.append(f"  dataset  {cfg.dataset} at {cfg.data_root}: not counted (see the error)")
        for d in self.data:
            lines.append(f"  dataset  {d.layout} at {d.root} ({d.metadata})")
            lines.append(
                f"  images   {d.found:,} of {d.expected:,} found"
                + (f" ({d.missing:,} missing)" if d.missing else "")
                + f"; {'splits of those found' if cfg.missing == 'skip' else 'splits as listed'}: "
                f"{d.size.n_train:,} train / {d.size.n_val:,} validation / "
                f"{d.size.n_test:,} test"
            )
        lines.append(f"  device   {self.device}")
        parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in self.disk_parts.items() if v)
        lines.append(
            f"  disk     {format_bytes(self.disk_needed)} still to write ({parts or 'nothing'}), "
            f"{format_bytes(self.disk_free)} free under {self.disk_path}"
        )
        lines.append(f"  weights  {self.weights}")
        lines += [f"  note     {n}" for n in self.notes]
        return "\n".join(lines)


def format_bytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def count_dataset(cfg: Profile, layout: str) -> DataCount:
    """Count a user's dataset through its loader (``missing="keep"``: files listed, never decoded).

    Raises
    ------
    paperkit.data.datasets.DataError
        On a root without the layout's metadata or with malformed metadata (the loader's message).
    """
    from paperkit.pipeline.experiment import DATA_SEED

    root = Path(cfg.data_root)
    folders = True
    if layout == "nih":
        from paperkit.data.nih import DATA_ENTRY_NAMES, check_root, find_file, load_nih

        entry = find_file(check_root(root), DATA_ENTRY_NAMES)
        dataset = load_nih(root, split=cfg.split, seed=DATA_SEED, val_fraction=cfg.val_fraction, missing="keep")
        metadata = entry.name if entry else "Data_Entry"
        folders = (root / "images").is_dir() or any(p.is_dir() for p in root.glob("images_*/images"))
    elif layout == "chexpert":
        from paperkit.data.chexpert import find_chexpert_dir, load_chexpert

        folder = find_chexpert_dir(root)
        dataset = load_chexpert(
            root, frontal_only=cfg.frontal_only, seed=DATA_SEED, val_fraction=cfg.val_fraction, missing="keep"
        )
        metadata = f"{folder.name}/train.csv and valid.csv" + (", frontal views" if cfg.frontal_only else "")
    elif layout == "mimic":
        from paperkit.data.mimic import load_mimic

        dataset = load_mimic(root, frontal_only=cfg.frontal_only, missing="keep")
        metadata = "MIMIC-CXR-JPG metadata"
    else:
        raise ValueError(f"layout must be nih, chexpert or mimic, got {layout!r}")
    absent = set(dataset.missing)
    present = np.array([i not in absent for i in dataset.image_ids], dtype=bool)
    used = present if cfg.missing == "skip" else np.ones(len(present), dtype=bool)
    split = dataset.split[used]
    size = DataSize(
        int((split == "train").sum()),
        int((split == "val").sum()),
        int((split == "test").sum()),
        "counted in the metadata" + (" (images found)" if cfg.missing == "skip" else ""),
    )
    return DataCount(
        layout, root, metadata, len(dataset), int(present.sum()), tuple(dataset.missing[:SHOWN]), folders, size
    )


def data_problems(cfg: Profile, count: DataCount) -> list[str]:
    """Problems with a counted dataset: missing images (unless skipped), nothing to train or test on."""
    where = "" if count.image_folders else " (no images/ or images_0NN/images/ folder)"
    if count.found == 0:
        return [
            f"{count.layout}: none of the {count.expected:,} images listed in {count.metadata} is on disk under "
            f"{count.root}{where}: put the images there (-p missing=skip cannot help: nothing would be left)"
        ]
    problems = []
    if count.missing and cfg.missing == "error":
        problems.append(
            f"{count.layout}: {count.missing:,} of {count.expected:,} images listed in {count.metadata} are "
            f"missing on disk under {count.root}{where} (first: {', '.join(count.first_missing)}); add "
            f"them, or pass -p missing=skip to train on the {count.found:,} found"
        )
    size = count.size
    if size.n_train < cfg.batch_size or not size.n_val or not size.n_test:
        problems.append(
            f"{count.layout}: {size.n_train:,} train / {size.n_val:,} validation / {size.n_test:,} test "
            f"images; training needs at least batch_size={cfg.batch_size} train images and some "
            f"validation and test images"
        )
    return problems


def check_device(cfg: Profile) -> tuple[str, list[str], list[str]]:
    """``(what the profile will use, problems, notes)``: the device, and how many independent runs
    train at once on which GPUs (:func:`paperkit.training.workers.resolve_workers`)."""
    import torch

    cuda = torch.cuda.is_available()
    notes = []
    if cuda and cfg.device in ("auto", "cuda"):
        device_type, visible = "cuda", torch.cuda.device_count()
        text = f"cuda: {torch.cuda.get_device_name(0)} ({visible} visible)"
    elif cfg.device == "cuda":
        return (
            "cuda requested, none visible",
            [
                f"device=cuda but torch {torch.__version__} sees no CUDA GPU "
                f"(built for CUDA {torch.version.cuda or 'none'}): "
                f"run on a GPU machine, or pass -p device=cpu (or auto)"
            ],
            [],
        )
    else:
        device_type, visible = "cpu", 0
        text = "cpu" + (" (torch sees no CUDA GPU)" if cfg.device == "auto" else " (device=cpu)")
        if cfg.device == "auto" and max(map(parameter_count, _archs(cfg))) > 5_000_000:
            notes.append(
                "no GPU: the paper's networks train on this CPU at a few images per second "
                "(python -m paperkit plan estimates the time)"
            )
    try:
        n, gpus = resolve_workers(cfg.workers, cfg.devices, device_type, visible)
    except ValueError as err:
        return text, [str(err)], notes
    where = f" on GPU {', '.join(map(str, gpus))}" if gpus else ""
    return f"{text}; independent runs: {n} at once{where}", [], notes


def _archs(cfg: Profile) -> tuple[str, ...]:
    from paperkit.config import trained_archs

    return trained_archs(cfg)


def disk_parts(cfg: Profile, paths: RunPaths, sizes: dict[str, DataSize]) -> dict[str, int]:
    """Bytes still to write by kind: image cache, benchmark renders, checkpoints (finished steps count 0)."""
    cache = bench = 0
    for key, size in sizes.items():
        if read_manifest(paths.image_cache(f"{key}-{cfg.resize}px")) is None:
            cache += size.n_all * cfg.resize**2  # uint8 [N, resize, resize]
        if cfg.dataset == "benchmark" and read_manifest(paths.benchmark / key) is None:
            bench += size.n_all * cfg.render_size**2  # 8-bit PNGs: at most their pixels
    checkpoints = sum(
        parameter_count(r.arch) * CHECKPOINT_BYTES_PER_PARAM
        for r in planned_runs(cfg)
        if read_manifest(paths.run_dir(r.folder)) is None
    )
    return {"image cache": cache, "benchmark images": bench, "checkpoints": checkpoints}


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the results folder may not exist yet)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def run_preflight(cfg: Profile, paths: RunPaths | None = None) -> PreflightReport:
    """Check data, device, disk and weights for ``cfg``; never raises for a problem, collects it."""
    from paperkit.data.datasets import DataError
    from paperkit.orchestration.weights import check_pretrained
    from paperkit.pipeline import experiment as ex

    paths = paths or RunPaths.for_profile(cfg)
    report = PreflightReport(cfg)
    if cfg.needs_data_root:
        for layout in ex.layouts(cfg):
            try:
                count = count_dataset(cfg, layout)
            except DataError as err:
                report.problems.append(f"{layout}: {err}")
                continue
            report.data.append(count)
            report.problems += data_problems(cfg, count)
            if count.missing and cfg.missing == "skip":
                report.notes.append(f"{layout}: {count.missing:,} missing images skipped (-p missing=skip)")
    report.device, problems, notes = check_device(cfg)
    report.problems += problems
    report.notes += notes
    sizes = data_sizes(cfg, paths, report.sizes)
    if cfg.needs_data_root:  # a dataset that could not be counted has no size: count nothing for it
        sizes = {k: v for k, v in sizes.items() if k in {dataset_key(cfg, d.layout) for d in report.data}}
    report.disk_parts = disk_parts(cfg, paths, sizes)
    report.disk_path = _existing(paths.root)
    report.disk_free = shutil.disk_usage(report.disk_path).free
    if report.disk_needed > report.disk_free:
        report.problems.append(
            f"disk: about {format_bytes(report.disk_needed)} still to write under {paths.root} "
            f"but {format_bytes(report.disk_free)} free: free space, or set PAPERKIT_RESULTS "
            f"to a folder on a larger disk"
        )
    try:
        check_pretrained(cfg)
        report.weights = {
            "none": "none: from scratch",
            "": "none: from scratch",
            "imagenet": "imagenet: cached or downloadable",
        }.get(cfg.pretrained, f"folder {cfg.pretrained}: every <arch>.pth present")
    except ConfigError as err:
        report.weights = f"{cfg.pretrained}: not available (see the error)"
        report.problems.append(str(err))
    return report
