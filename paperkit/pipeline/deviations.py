"""Where a run departs from the paper, stated from one source.

Two kinds of statement, both derived here and nowhere else:

* ``setting``: a profile field whose value differs from the paper's. The paper's values are
  :data:`PAPER` (a :class:`~paperkit.config.Profile`); each field has one why-text in
  :data:`SETTINGS`. Only fields that differ are listed.
* ``choice``: something the kit does where the paper is silent or ambiguous (:data:`CHOICES`),
  listed whatever the profile, unless the profile picks the paper's reading.

Notebooks (``setup(notebook=...)``) and ``REPORT.md`` print :func:`deviations`, so a new profile or
an override (``-p epochs=3``) is reported without anyone editing prose.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple, Sequence

from paperkit.config import PROFILES, Profile

ALL_NOTEBOOKS = ("01", "02", "03", "04", "05", "06", "07", "08", "09")
#: Notebook 09 (the label-noise lab) trains the target as notebook 05 does: 05's departures are its own.
TRAINS_LIKE = {"09": "05"}

#: The paper's settings ("Implementation Details"; NIH split of CheXNet, Table 1). The Profile
#: defaults are the paper's values except for these three, which default to what runs here.
PAPER = replace(Profile(), name="paper", dataset="nih", pretrained="imagenet", split="patient70_10_20")


@dataclass(frozen=True)
class Deviation:
    """One departure from the paper.

    Attributes
    ----------
    field
        The :class:`~paperkit.config.Profile` field it rides on, or a short key for a choice
        no field controls (``"flip"``, ``"best_epoch"``, ...).
    what
        Short label for a reader.
    ours, paper
        The kit's value and the paper's, as text.
    why
        One line: the reason.
    notebooks
        Notebook numbers (``"05"``) whose results it shapes.
    kind
        ``"setting"`` (a value that differs from the paper's) or ``"choice"`` (the paper is silent).
    """

    field: str
    what: str
    ours: str
    paper: str
    why: str
    notebooks: tuple[str, ...]
    kind: str


class _Setting(NamedTuple):
    why: str
    notebooks: tuple[str, ...]


#: Why a profile may set each paper setting differently, written once per field.
SETTINGS: dict[str, _Setting] = {
    "dataset": _Setting(
        "the profile runs anywhere in minutes without a dataset: the embedded benchmark renders "
        "synthetic radiographs with known clean labels, and test AUC is scored against them; "
        "--data-root with the nih or chexpert profile uses your copy (mimic: a dataset the "
        "paper does not use)",
        ALL_NOTEBOOKS,
    ),
    "n_images": _Setting("benchmark size chosen to fit the profile's time budget", ("01",)),
    "render_size": _Setting("small renders save generation time; the cache resizes them to `resize`", ("01",)),
    "split": _Setting(
        "another NIH split than CheXNet's patient-wise 70/10/20, which the paper follows "
        "(official: NIH's own train/test lists)",
        ("01", "06"),
    ),
    "uncertain_policy": _Setting("another CheXpert uncertain-label policy than U-Ones", ("01", "02", "05")),
    "resize": _Setting("smaller images fit a 2-core CPU's time budget", ("01", "02", "05")),
    "crop": _Setting("smaller images fit a 2-core CPU's time budget", ("02", "05", "08")),
    "reference_archs": _Setting(
        "small from-scratch networks that train on a CPU; the paper's six need ImageNet weights and a GPU",
        ("02", "03", "07"),
    ),
    "target_arch": _Setting("the smallest DenseNet, trainable from scratch on a CPU", ("05", "06", "07", "08")),
    "pretrained": _Setting(
        "the profile trains from scratch so that it runs offline and on any machine "
        "(pretrained=imagenet or a folder of <arch>.pth restores the paper's initialisation)",
        ("02", "05"),
    ),
    "lr": _Setting("another learning rate", ("02", "05")),
    "betas": _Setting("other Adam betas", ("02", "05")),
    "weight_decay": _Setting("weight decay the paper does not use", ("02", "05")),
    "batch_size": _Setting("another batch size (memory or speed)", ("02", "05")),
    "epochs": _Setting(
        "a shorter schedule fits the time budget; lr is still divided every lr_step_epochs", ("02", "05")
    ),
    "lr_step_epochs": _Setting("lr schedule scaled to a shorter run", ("02", "05")),
    "lr_gamma": _Setting("another lr decay factor", ("02", "05")),
    "lambda_modl": _Setting("another MODL weight λ", ("05", "06")),
    "gamma_knns": _Setting("another KNNS weight γ", ("05", "06")),
    "k": _Setting("another number of neighbours K (the paper's Fig. 4 sweeps 3-11 and picks 9)", ("04", "05", "06")),
    "sigma": _Setting("another similarity width σ (eq. 3)", ("04", "05")),
    "knns_mode": _Setting(
        "faithful KNNS forwards each anchor's K neighbours, (K+1)x the cost; efficient reads "
        "their predictions from a memory bank of stored predictions (no gradient into them)",
        ("05", "06"),
    ),
    "knns_k_reduction": _Setting("mean over k makes γ's weight independent of K (eq. 1 sums over k)", ("05", "06")),
    "k_sweep": _Setting("fewer K values than Fig. 4 to fit the time budget", ("06",)),
    "seeds": _Setting("several training seeds give every gain a mean ± sd across runs", ("05", "06")),
}

#: Fields that are not settings of the paper: bookkeeping, compute, the benchmark's own knobs and
#: the kit's extra ablations (listed as such in notebook 06, not as departures).
NOT_PAPER_SETTINGS = frozenset(
    {
        "name",
        "results_name",
        "notes",
        "data_root",
        "missing",
        "device",
        "num_threads",
        "workers",
        "devices",
        "layouts",
        "noise",
        "benchmark_seed",
        "extra_test_images",
        "val_fraction",
        "ablation_seeds",
        "teaching",
        "lambda_sweep",
        "noise_sweep",
        "ablation_reference_archs",
        "oof_folds",
        "lab_methods",
        "lab_noise_sweep",
    }
)


def _uses(profile: Profile, dataset: str) -> bool:
    """Does ``profile`` train on ``dataset`` (as in ``experiment.layouts``, without importing torch)?"""
    return dataset in profile.layouts if profile.dataset == "benchmark" else profile.dataset == dataset


#: Fields that only mean something for some profiles (benchmark knobs, dataset-specific options).
_APPLIES: dict[str, Callable[[Profile], bool]] = {
    "n_images": lambda p: p.dataset == "benchmark",
    "render_size": lambda p: p.dataset == "benchmark",
    "split": lambda p: p.dataset == "nih",  # the benchmark's NIH layout always uses its official lists
    "uncertain_policy": lambda p: _uses(p, "chexpert"),
}

#: Fields whose paper value is not a single Profile value.
_IS_PAPER: dict[str, Callable[[Any], bool]] = {
    "dataset": lambda v: v in ("nih", "chexpert"),
    "pretrained": lambda v: v not in ("", "none"),  # ImageNet weights, from timm or a folder
    "seeds": lambda v: len(v) == 1,
}
_PAPER_TEXT: dict[str, str] = {
    "dataset": "NIH ChestX-ray14, CheXpert",
    "n_images": "112,120 (NIH), 224,316 (CheXpert)",
    "render_size": "the original radiographs",
    "seeds": "one run",
    "lr_gamma": "1/3",
    "weight_decay": "0 (Adam's default)",
}


class _Choice(NamedTuple):
    field: str
    what: str
    ours: Callable[[Profile], str | None]  # None: the profile takes the paper's reading
    paper: str
    why: str
    notebooks: tuple[str, ...]


def _always(
    text: str | Callable[[Profile], str], when: Callable[[Profile], bool] = lambda p: True
) -> Callable[[Profile], str | None]:
    """``ours`` of a choice: ``text`` (or ``text(profile)``) when ``when(profile)``, else ``None``."""

    def ours(profile: Profile) -> str | None:
        if not when(profile):
            return None
        return text(profile) if callable(text) else text

    return ours


_HEADS = {
    "pcam": "PCAM pooling on every classifier",
    "avg": "global average pooling on every classifier; heatmaps are plain CAMs, not PCAM",
}

#: What the kit does where the paper is silent or ambiguous. ``field`` is the Profile field that
#: switches it, or a key of its own when nothing does.
CHOICES: tuple[_Choice, ...] = (
    _Choice(
        "kl_form",
        "KL of eq. 2 and 4",
        _always("per-class Bernoulli KL", when=lambda p: p.kl_form == "bernoulli"),
        "Σ l·log(l/p), a categorical KL, as printed",
        "for sigmoid outputs the printed form ignores the (1−l) mass and is minimised by p → 1; the "
        "Bernoulli KL is zero exactly at p = l (kl_form=as_printed keeps the printed form)",
        ("05", "06"),
    ),
    _Choice(
        "head",
        "pooling head",
        lambda p: _HEADS[p.head],
        "PCAM named only for Fig. 5's heatmaps; classification pooling unstated",
        "one head gives both the logits and the Fig. 5 heatmaps",
        ("02", "05", "08"),
    ),
    _Choice(
        "flip",
        "augmentation",
        _always("random crop and horizontal flip"),
        "resize 256, random crop 224; no flip mentioned",
        "common for chest X-rays (CheXNet flips too)",
        ("02", "05"),
    ),
    _Choice(
        "best_epoch",
        "reported epoch",
        _always("best epoch on mean validation AUC against the mined (noisy) validation labels"),
        "not stated",
        "the test split stays untouched, and a real user has only mined labels to select on",
        ("02", "05", "06"),
    ),
    _Choice(
        "score_epoch",
        "epoch of the seed-mean verdict and the lab",
        lambda p: "each run's last epoch" if p.score_epoch == "last" else "the epoch validation chose (as above)",
        "not stated",
        "decided on the development draw (benchmark seed 0) by B alone before the rule was applied "
        "(scripts/epoch_rule.py): choosing the epoch on noisy validation labels made B's test AUC vary more "
        "from seed to seed (pooled sd 0.82 against 0.71 at the last epoch); score_epoch=best reads the chosen epoch",
        ("06",),  # notebook 09 lists 05's (it trains as 05 does) and says it scores as 06
    ),
    _Choice(
        "frontal_only",
        "views",
        _always(
            lambda p: "frontal only" if p.frontal_only else "frontal and lateral",
            when=lambda p: p.dataset in ("chexpert", "mimic"),
        ),
        "not stated",
        "NIH holds frontal views only; frontal CheXpert views keep the two datasets alike",
        ("01",),
    ),
    _Choice(
        "loss_reduction",
        "loss reduction",
        _always("each term averaged over batch and classes"),
        "sums over images and classes (eq. 1)",
        "keeps λ and γ independent of the batch size and the number of findings; same optimum",
        ("05", "06"),
    ),
    _Choice(
        "bootstrap",
        "uncertainty",
        _always(
            lambda p: f"patient-level bootstrap 95% CIs ({p.bootstrap} resamples), DeLong tests",
            when=lambda p: p.bootstrap > 0,
        ),
        "single numbers without intervals",
        "tells real gains from test-set noise",
        ("06", "07"),
    ),
    _Choice(
        "amp",
        "precision",
        _always("bf16 autocast when on CUDA", when=lambda p: p.amp and p.device != "cpu"),
        "not stated",
        "GPU speed; the losses stay in float32",
        ("02", "05"),
    ),
)


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(_text(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _ours(profile: Profile, field: str) -> str:
    """The profile's value, marked when it overrides its named profile's."""
    value = getattr(profile, field)
    text = f"{len(value)} seeds ({_text(value)})" if field == "seeds" else _text(value)
    base = PROFILES.get(profile.name)
    return f"{text} (override)" if base is not None and getattr(base, field) != value else text


def deviations(profile: Profile, notebook: str = "") -> list[Deviation]:
    """Every departure of ``profile`` from the paper: settings that differ, then the kit's choices.

    Parameters
    ----------
    profile
        The run's resolved profile (overrides applied).
    notebook
        Only the deviations that concern this notebook (``"05"``); all when empty.
    """
    out: list[Deviation] = []
    for name, setting in SETTINGS.items():
        if not _APPLIES.get(name, lambda p: True)(profile):
            continue
        value = getattr(profile, name)
        is_paper = _IS_PAPER.get(name, lambda v, n=name: v == getattr(PAPER, n))
        if not is_paper(value):
            paper = _PAPER_TEXT.get(name, _text(getattr(PAPER, name)))
            out.append(Deviation(name, name, _ours(profile, name), paper, setting.why, setting.notebooks, "setting"))
    for choice in CHOICES:
        ours = choice.ours(profile)
        if ours is not None:
            out.append(Deviation(choice.field, choice.what, ours, choice.paper, choice.why, choice.notebooks, "choice"))
    same = TRAINS_LIKE.get(notebook, notebook)
    return [d for d in out if not notebook or notebook in d.notebooks or same in d.notebooks]


def markdown_list(devs: Sequence[Deviation]) -> str:
    """Compact bullets for a notebook: ``what``: ours (paper: ...), why."""
    if not devs:
        return "- none: the paper's settings"
    return "\n".join(f"- **{d.what}**: {d.ours} (paper: {d.paper}); {d.why}" for d in devs)


def markdown_table(devs: Sequence[Deviation]) -> str:
    """A pipe table (what, ours, paper, why) for ``REPORT.md``."""

    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    lines = [row(["what", "ours", "paper", "why"]), row(["---"] * 4)]
    lines += [row([f"`{d.what}`" if d.kind == "setting" else d.what, d.ours, d.paper, d.why]) for d in devs]
    return "\n".join(lines)
