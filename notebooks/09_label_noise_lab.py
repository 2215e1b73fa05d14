# ---
# jupyter:
#   kernelspec:
#     display_name: Python (paperkit)
#     language: python
#     name: paperkit
# ---

# %% [markdown]
# # 09 · The label-noise lab: the field's methods beside MODL+KNNS
#
# Noisy-label chest X-ray work trains on mined labels and tests on clean relabels; none of it knows
# the clean label of every *training* image, so none can say how much of what the noise costs a
# method wins back. The embedded benchmark can: the clean-label ceiling (notebook 05) is the target
# trained on the clean labels, and each method's **recovered share** is
# $$\text{recovered} = \frac{\text{AUC}_\text{method} - \text{AUC}_\text{B}}
# {\text{AUC}_\text{ceiling} - \text{AUC}_\text{B}}.$$
#
# Every method replaces eq. 1's $L_{cls}$ (BCE) in the one training loop, with the same images, seeds,
# schedule and batch order as B. Outputs are $C$ independent sigmoids $p^j = \sigma(z^j)$, so each
# method written for a softmax is applied per class to the two outcomes $(p^j, 1 - p^j)$ against
# $(t^j, 1 - t^j)$ (`paperkit.method.noisy_losses` states each adaptation):
#
# - **KD**, the references' soft labels $l$ alone, no BCE on the mined labels:
#   $\frac{1}{C}\sum_j \mathrm{KL}\big(\mathrm{Bern}(l^j)\,\|\,\mathrm{Bern}(p^j)\big)$;
# - **GCE** (Zhang & Sabuncu 2018): $\frac{1}{C}\sum_j \big[t^j \frac{1 - (p^j)^q}{q}
#   + (1 - t^j)\frac{1 - (1 - p^j)^q}{q}\big]$, $q \to 0$ is BCE, $q = 1$ the mean absolute error;
# - **soft bootstrapping** (Reed et al. 2015): BCE against $\beta t + (1 - \beta) p$, i.e.
#   $\beta\,\mathrm{BCE}(t, p) + (1 - \beta) H(p)$;
# - **ELR** (Liu et al. 2020): $\mathrm{BCE}(t, p) + \lambda \frac{1}{C}\sum_j
#   \log\big(1 - p^j \bar t^{j+} - (1 - p^j)\bar t^{j-}\big)$, $\bar t$ a running average of the
#   model's own earlier predictions for the image;
# - **B+MODL+KNNS**, the paper's method (eq. 1), with $\lambda = \gamma$ from a grid.
#
# **Fair comparison.** Each method's one setting is chosen on the first seed from the grid registered
# with it, by the mined-label validation AUC that chooses every run's epoch, before any test score is
# read; the other seeds train with it. The authors' default is reported beside it. Noise level: the
# measured NIH report-mining rates (1x), every seed. `lab_noise_sweep` adds other levels on the first
# seed, each with its own six teachers and every method's grid: `{"lab_noise_sweep": "0,2"}` adds none
# (0x) and twice them (2x), 92 runs and about 55 minutes on a 2-core CPU beside the lab profile's hour,
# for readings one seed cannot decide. Every method is scored as the verdict of notebook 06 scores
# B+MODL+KNNS: on the test split and the second draw of test patients, each run at the epoch
# `score_epoch` names (its last by default). The `lab` profile runs it (`bash run_all.sh --profile
# lab`); other profiles list no lab methods and skip it. `paperkit.pipeline.lab` holds the rules.

# %% [markdown]
# The parameters cell (papermill replaces it when `run_all.sh` runs this notebook):

# %% tags=["parameters"]
profile = "lab"  # lab | smoke | ...: the lab runs where the profile lists lab_methods (cpu: none)
data_root = ""  # the lab needs the embedded benchmark's clean training labels for its ceiling
overrides = {}  # any Profile field, e.g. {"lab_methods": "gce,elr"}; validated before any work
train_own_method = False  # the last section: train the example method in the lab (about 8 more runs)

# %%
import pandas as pd

from paperkit.evaluation import figures, report
from paperkit.notebook import setup, show_figure, show_table
from paperkit.pipeline import experiment as ex
from paperkit.pipeline import lab

cfg, paths = setup(profile, data_root, overrides, notebook="09")
print("lab methods:", ", ".join(m.name for m in lab.lab_methods(cfg)) if cfg.lab_methods else "none in this profile")
print("noise levels:", ", ".join(f"{n:g}x" for n in lab.noise_levels(cfg)), "| seeds at 1x:", list(cfg.seeds))

# %% [markdown]
# ## The lab table and figure
# Per layout and noise level: each method's mean test AUC on the clean labels, its gain over B and the
# share of the noise cost it recovers, with the verdict's seeds x patients bootstrap CIs. The dashed
# line in the figure is the noise cost: a method on it wins back everything the noise takes.

# %%
lab_cells = [lab.run_cell(cfg, paths, layout, noise)
             for layout in ex.layouts(cfg) for noise in lab.noise_levels(cfg)] if cfg.lab_methods else []
if lab_cells:
    lab_results = lab.lab_frame(lab_cells, [lab.score_cell(cfg, cell) for cell in lab_cells])
    show_table(report.lab_table(lab_results, score_epoch=cfg.score_epoch))
    show_figure(figures.lab_forest(lab_results, paths.figures))
    show_table(report.lab_grid_table(pd.concat([cell.grid for cell in lab_cells], ignore_index=True)))
else:
    print(f"profile {cfg.name} lists no lab methods: run `bash run_all.sh --profile lab` for the lab")

# %% [markdown]
# ## Your own method
# A method is a function of the logits, the training targets and mask, the soft labels, the rows, the
# epoch, its one setting and a per-run state dict, registered by name (README: "Your own label-noise
# method"). Registered, it trains and is scored beside the others, resumable and cached like every run.
# Here: symmetric cross entropy (Wang et al. 2019), per class, with its grid of $\beta$.

# %%
import torch

from paperkit.method.losses import bce_loss
from paperkit.method.noisy_losses import register_method


def symmetric_ce(logits, targets, mask, soft, rows, epoch, param, state):
    """BCE + param * reverse CE, -[p log t + (1-p) log(1-t)] with log 0 := -4 (Wang et al. 2019)."""
    p = torch.sigmoid(logits)
    log_t, log_not_t = (x.clamp_min(1e-12).log().clamp_min(-4.0) for x in (targets, 1 - targets))
    reverse = -(p * log_t + (1 - p) * log_not_t)
    keep = torch.ones_like(p) if mask is None else mask.float()
    return bce_loss(logits, targets, mask) + param * (reverse * keep).sum() / keep.sum().clamp_min(1)


register_method("symmetric_ce", symmetric_ce, default=1.0, grid=(0.1, 1.0), replace=True, doc="symmetric CE")
if train_own_method and cfg.lab_methods:
    own_cfg = lab.with_method(cfg, "symmetric_ce")
    own_cell = lab.run_cell(own_cfg, paths, ex.layouts(cfg)[0], cfg.noise)
    own_results = lab.lab_frame([own_cell], [lab.score_cell(own_cfg, own_cell)])
    show_table(report.lab_table(own_results, stem="lab_own_method", score_epoch=cfg.score_epoch))
else:
    print("registered symmetric_ce; set train_own_method = True (lab profile) to train it in the lab")
