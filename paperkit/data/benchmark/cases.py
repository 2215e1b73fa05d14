"""Everything random about a benchmark: cases (patients, follow-ups, clean labels, severities,
demographics, views and devices) drawn to NIH's statistics, the patient-disjoint test split, the
report-mined noisy labels and the phantom parameters of every image."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from paperkit.data import noise as noise_model
from paperkit.data import phantom
from paperkit.data.labels import NIH_CLASSES
from paperkit.data.nih_stats import load_stats

TEST_FRACTION = 0.2
SEVERITY_BETA = (1.4, 1.6)


@dataclass(frozen=True)
class Draw:
    """One benchmark's random choices.

    Attributes
    ----------
    cases
        :func:`sample_cases`'s arrays plus ``params``, the phantom parameters of every image.
    test
        bool ``[N]``: test images (whole patients, :func:`split_patients`).
    noisy
        Report-mined labels (:func:`paperkit.data.noise.apply_noise`).
    blank
        bool ``[N, 3]``: where a report leaves No Finding, Fracture and Support Devices blank (CheXpert).
    """

    cases: dict[str, Any]
    test: np.ndarray
    noisy: noise_model.NoisyLabels
    blank: np.ndarray


def draw_benchmark(n_images: int, seed: int, noise: float) -> Draw:
    """Draw everything from one generator seeded by ``seed``, always in the same order."""
    rng = np.random.default_rng([seed, 0])
    cases = sample_cases(n_images, rng)
    test = split_patients(cases["patient"], rng)
    noisy = noise_model.apply_noise(cases["labels"], cases["severity"], rng, noise,
                                     cases["view_ap"] | (cases["devices"] > 0))
    blank = rng.random((n_images, 3)) < min(1.0, noise * noise_model.NoiseConfig().p_blank)
    cases["params"] = phantom.sample_params(rng, cases["labels"], cases["severity"], cases["view_ap"], cases["devices"])
    return Draw(cases, test, noisy, blank)


def sample_cases(n_images: int, rng: np.random.Generator, stats: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """Draw patients, follow-ups, clean labels, severities, demographics, views and devices.

    Parameters
    ----------
    n_images
        Number of images.
    rng
        Source of randomness.
    stats
        NIH statistics (default: the packaged :func:`~paperkit.data.nih_stats.load_stats`).

    Returns
    -------
    dict of ``[N]`` / ``[N, 14]`` arrays: ``patient`` (1-based), ``follow_up``, ``labels``,
    ``severity``, ``age``, ``male``, ``view_ap``, ``devices``.
    """
    stats = stats or load_stats()
    # patients: NIH's images-per-patient histogram, capped so that one patient cannot dominate
    k, cnt = np.array(stats["images_per_patient"]).T
    cap = max(2, n_images // 50)
    per_patient = np.minimum(rng.choice(k, size=n_images, p=cnt / cnt.sum()), cap)
    ends = np.cumsum(per_patient)
    n_pat = int(np.searchsorted(ends, n_images) + 1)
    per_patient = per_patient[:n_pat]
    per_patient[-1] -= ends[n_pat - 1] - n_images
    patient = np.repeat(np.arange(1, n_pat + 1), per_patient)
    first = np.r_[True, patient[1:] != patient[:-1]]
    follow_up = np.arange(n_images) - np.flatnonzero(first).repeat(per_patient)

    # labels: a follow-up keeps the previous image's combination with NIH's probability, else
    # draws afresh (a Markov chain whose stationary law is NIH's combination frequencies)
    names = [c for c, _ in stats["combos"]]
    freq = np.array([v for _, v in stats["combos"]], float)
    draw = rng.choice(len(names), size=n_images, p=freq / freq.sum())
    keep = (rng.random(n_images) < stats["keep_labels"]) & ~first
    run_start = np.maximum.accumulate(np.where(keep, 0, np.arange(n_images)))
    combo_table = np.array([[c in name.split("|") for c in NIH_CLASSES] for name in names])
    labels = combo_table[draw[run_start]]
    sev = rng.beta(*SEVERITY_BETA, size=(n_images, len(NIH_CLASSES)))
    severity = np.clip(sev[run_start] + 0.08 * rng.standard_normal(sev.shape) * keep[:, None], 0.05, 1)
    severity = (severity * labels).astype(np.float32)

    edges, counts = np.array(stats["age"]["edges"]), np.array(stats["age"]["counts"], float)
    b = rng.choice(len(counts), size=n_pat, p=counts / counts.sum())
    age0 = edges[b] + rng.integers(0, edges[1] - edges[0], n_pat)
    age = age0[patient - 1] + follow_up // 8
    p_male = stats["sex"]["M"] / (stats["sex"]["M"] + stats["sex"]["F"])
    male = (rng.random(n_pat) < p_male)[patient - 1]
    p_ap = {k: v["AP"] / (v["AP"] + v["PA"]) for k, v in stats["view"].items()}
    view_ap = rng.random(n_images) < np.where(labels.any(1), p_ap["finding"], p_ap["no_finding"])
    # support devices: mostly on AP (portable, ICU) films; a confounder, not a finding
    has_dev = rng.random(n_images) < np.where(view_ap, 0.45, 0.08)
    bits = (rng.random((n_images, 3)) < (0.4, 0.7, 0.5)) * (
        phantom.DEVICE_TUBE,
        phantom.DEVICE_LINE,
        phantom.DEVICE_ECG,
    )
    bits = bits.sum(1)
    devices = np.where(has_dev, np.where(bits == 0, phantom.DEVICE_LINE, bits), 0)
    return {
        "patient": patient,
        "follow_up": follow_up,
        "labels": labels,
        "severity": severity,
        "age": age,
        "male": male,
        "view_ap": view_ap,
        "devices": devices,
    }


def split_patients(patient: np.ndarray, rng: np.random.Generator, test_fraction: float = TEST_FRACTION) -> np.ndarray:
    """Bool ``[N]``: True for test images; whole patients go to test until ``test_fraction`` of images."""
    ids, counts = np.unique(patient, return_counts=True)
    order = rng.permutation(len(ids))
    take = np.cumsum(counts[order]) <= max(1, round(test_fraction * len(patient)))
    take[0] = True  # at least one test patient
    return np.isin(patient, ids[order][take])
