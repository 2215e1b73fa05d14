# ---
# jupyter:
#   kernelspec:
#     display_name: Python (paperkit)
#     language: python
#     name: paperkit
# ---

# %% [markdown]
# # 01 · Data preparation
#
# The paper trains on NIH ChestX-ray14 (112,120 images, 14 findings text-mined from reports) and
# CheXpert (224,316 images, 14 observations with *uncertain* mentions). Both sets of labels are
# mined from reports, so they are noisy: "more than 10% of the annotations are incorrect".
#
# So that it runs anywhere in minutes, the default profile needs no dataset: paperkit renders its own
# **embedded benchmark** (your copy of NIH or CheXpert: `--data-root` with the `nih` or `chexpert`
# profile): synthetic radiographs with the 14 NIH findings, whose *clean* labels are
# known, and whose training labels pass through a report-mining noise model calibrated to
# Google's radiologist relabels of NIH (PPV and sensitivity around 0.5-0.7). It is written in the
# real NIH and CheXpert folder layouts, so the same loaders read it and your own copy.
#
# **Deviation (stated):** images are rendered at `render_size` and cached at `resize` px; the paper
# resizes to 256 and crops 224. The `nih`/`chexpert` profiles use the paper's sizes.

# %% [markdown]
# The parameters cell (papermill replaces it when `run_all.sh` runs this notebook):

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | nih | chexpert
data_root = ""  # your dataset root for the nih / chexpert profiles
overrides = {}  # any Profile field, e.g. {"noise": 0.5}; validated before any work

# %%
import functools

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from paperkit.artifacts import write_text
from paperkit.notebook import setup, show_figure
from paperkit.pipeline import experiment as ex

cfg, paths = setup(profile, data_root, overrides, notebook="01")


@functools.cache
def prepared(layout):
    """One layout's dataset and image cache, built once (each section asks for what it needs)."""
    return ex.prepare(cfg, paths, layout, progress=True)

# %% [markdown]
# ## Build (or load) each dataset and its image cache
# Every image is decoded once into a memory-mapped uint8 array; training reads crops from it.

# %%
def sizes(p):
    return {"images": len(p.dataset), "patients": len(set(p.dataset.patient_ids)),
            **{f"{s} images": len(p.rows(s)) for s in ("train", "val", "test")},
            "clean truth": p.dataset.clean_labels is not None}


display(pd.DataFrame({layout: sizes(prepared(layout)) for layout in ex.layouts(cfg)}))

# %% [markdown]
# ## Label statistics
# Prevalence of each finding $c$ over the $n$ training images, in the mined (noisy) labels $y$ and,
# where known, in the clean truth $t$:
# $$\mathrm{prev}_c = \frac{1}{n}\sum_{i=1}^{n} [\,y_i^c = 1\,].$$

# %%
for stats_layout in ex.layouts(cfg):
    stats_prep = prepared(stats_layout)
    stats_train = stats_prep.rows("train")
    stats = pd.DataFrame({"mined": np.nanmean(stats_prep.dataset.labels[stats_train] == 1, axis=0)},
                         index=stats_prep.classes)
    if stats_prep.dataset.clean_labels is not None:
        stats["clean"] = np.nanmean(stats_prep.dataset.clean_labels[stats_train], axis=0)
    stats_ax = stats.plot.barh(figsize=(6, 4), title=f"{stats_layout}: prevalence in training images")
    stats_ax.invert_yaxis()
    show_figure(stats_ax.figure, f"nb01_prevalence_{stats_layout}")

# %% [markdown]
# ## Example images per finding
# On the embedded benchmark: a mild and a severe example of each finding with its lesion outline.

# %%
if cfg.dataset == "benchmark":
    from paperkit.data.phantom import plot_finding_gallery

    show_figure(plot_finding_gallery(paths.figures / "benchmark_finding_gallery.png"))
else:
    example_prep = prepared(ex.layouts(cfg)[0])
    fig, axes = plt.subplots(2, 4, figsize=(10, 5))
    for example_ax, row in zip(axes.flat, example_prep.rows("train")[:8]):
        example_ax.imshow(example_prep.images.load(np.array([row]))[0], cmap="gray")
        example_ax.set_title(example_prep.dataset.image_ids[row], fontsize=7)
        example_ax.axis("off")
    show_figure(fig, "nb01_examples")

# %% [markdown]
# ## How noisy are the mined labels? (embedded benchmark only)
# PPV and sensitivity of the mined training labels against the clean truth, per finding: the
# noise the paper's soft labels are meant to absorb.
#
# $$\mathrm{PPV}_c = \frac{TP_c}{TP_c + FP_c}, \qquad \mathrm{sensitivity}_c = \frac{TP_c}{TP_c + FN_c},$$
# counting a mined positive that is a clean positive as a true positive ($TP$).
#
# The noise model (`paperkit.data.noise`, whose docstring has the equations): a true finding of
# severity $s$ is missed with probability
# $$P(\text{missed} \mid s) = \text{noise} \cdot \sigma(\alpha_c - \text{slope} \cdot s),$$
# with $\alpha_c$ solved so that the sensitivity at $\text{noise} = 1$ is the measured one (Google's relabelling
# of NIH: e.g. Pneumothorax 0.46, Nodule/Mass 0.42, airspace opacity 0.51); false reports are drawn at the rate
# that gives the measured PPV, more often on images with a look-alike or co-occurring finding and
# on portable (AP or device-bearing) films. On CheXpert-layout labels, faint or false mentions are
# hedged as uncertain ($-1$) and unreported findings are often left blank. The three structure
# weights are *not* measured anywhere; they set how much of the noise is shared, learnable bias
# (faint findings missed) and how much is image-specific (see the module docstring for why they
# are (3, 2, 1)).

# %%
from paperkit.data.noise import NoiseConfig, mined_label_noise

print({k: v for k, v in vars(NoiseConfig()).items() if k not in ("rates", "lookalikes")})
for noise_layout in ex.layouts(cfg):
    noise_prep = prepared(noise_layout)
    if noise_prep.dataset.clean_labels is None:
        print(f"{noise_layout}: no clean truth, noise cannot be measured")
        continue
    noise_train = noise_prep.rows("train")
    noise = mined_label_noise(noise_prep.dataset.labels[noise_train], noise_prep.dataset.clean_labels[noise_train],
                              noise_prep.classes)
    print(f"{noise_layout}: mined labels vs clean truth on {len(noise_train)} training images")
    display(noise.round(2))
    write_text(paths.tables / f"data_label_noise_{noise_layout}.csv", noise.to_csv())

# %% [markdown]
# ## What this noise costs a model (embedded benchmark only)
# Because the benchmark knows every clean label, the kit can say what the noise above costs: notebook
# 05 trains the target on the clean training labels too (the **ceiling**, `paperkit.pipeline.ceiling`), and
# notebook 06's verdict reports the **noise cost** (ceiling − B, in mean test AUC) and the share of it
# the paper's method wins back. After a first run of this profile, the cell below shows those numbers
# from `tables/verdict.csv`; REPORT.md opens with them.

# %%
verdict_csv = paths.tables / "verdict.csv"
if cfg.dataset == "benchmark" and verdict_csv.exists():
    cost = pd.read_csv(verdict_csv).set_index("layout")
    display(cost.filter(["seeds", "B", "ceiling", "noise_cost", "noise_cost_ci_low", "noise_cost_ci_high"]).round(2))
else:
    print("no verdict yet: notebooks 05-06 of this profile measure the noise's cost")
