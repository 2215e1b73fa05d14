# ---
# jupyter:
#   kernelspec:
#     display_name: Python (paperkit)
#     language: python
#     name: paperkit
# ---

# %% [markdown]
# # 03 · The soft label distribution (eq. 2's $l_i$)
#
# "The probability predictions of all the trained networks are simply averaged, and can then be
# viewed as the soft label distribution." Evident lesions keep high values, healthy scans low
# ones, and findings the references disagree on are smoothed — a majority vote, unlike the random
# label smoothing (LSR) of Pham et al., which draws $U(0.55, 0.85)$ for an uncertain positive.
#
# **Ambiguity (stated):** the paper averages the references' predictions on the training images
# they were trained on (in-fold). Notebook 06 compares this with out-of-fold teachers.

# %% [markdown]
# The parameters cell (papermill replaces it when `run_all.sh` runs this notebook):

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | nih | chexpert
data_root = ""  # your dataset root for the nih / chexpert profiles
overrides = {}  # any Profile field; validated before any work
example = 0  # which training image to show in the Fig. 1 analogue

# %%
import functools

import numpy as np
import pandas as pd
from IPython.display import display

from paperkit.artifacts import write_text
from paperkit.evaluation.figures import fig1_label_views
from paperkit.method.losses import uncertain_targets
from paperkit.notebook import setup, show_figure
from paperkit.pipeline import ablations
from paperkit.pipeline import experiment as ex

cfg, paths = setup(profile, data_root, overrides, notebook="03")


@functools.cache
def soft_labels(layout):
    """One layout's data and its soft labels from notebook 02's references, computed (or loaded) once;
    each section asks for what it needs."""
    prep = ex.prepare(cfg, paths, layout)
    return prep, ex.soft_labels(cfg, paths, prep, ex.train_references(cfg, paths, prep, seed=0))

# %% [markdown]
# ## The soft labels: the references' average (eq. 2's $l_i$)
# For image $x_i$ and the $N$ references $f_1, \dots, f_N$ of notebook 02, finding by finding:
# $$l_i = \big(l_{y_1 x_i}, \dots, l_{y_C x_i}\big) = \frac{1}{N}\sum_{n=1}^{N} f_n(x_i)
#   \qquad\text{(`paperkit.method.soft_labels.average_predictions`)},$$
# computed once for every image and stored; the target learns it through
# $L_{distri} = \mathrm{KL}\big(l_i \,\|\, f_T(x_i)\big)$ (eq. 2, notebook 05).

# %%
for layout in ex.layouts(cfg):
    labels = soft_labels(layout)[1]  # values, and the folder named by the references' runs
    print(f"{layout}: soft labels {labels.values.shape} from {len(cfg.reference_archs)} references "
          f"-> soft_labels/{labels.folder}")

# %% [markdown]
# ## Fig. 1 analogue: binary labels, LSR labels and the soft label distribution of one image
# Binary: U-Ones maps an uncertain label ($-1$) to 1; LSR draws it from $U(0.55, 0.85)$ instead;
# the soft label is $l_i$ above.

# %%
fig_layout = "chexpert" if "chexpert" in ex.layouts(cfg) else ex.layouts(cfg)[0]
prep, fig_soft = soft_labels(fig_layout)
row = prep.rows("train")[example]
binary, _ = uncertain_targets(prep.dataset.labels[row : row + 1], "u_ones")
lsr, _ = uncertain_targets(prep.dataset.labels[row : row + 1], "lsr_ones", seed=0)
files = fig1_label_views(prep.classes, binary[0], lsr[0], fig_soft.values[row], paths.figures,
                         image=prep.images.load(np.array([row]))[0].numpy())
show_figure(files)

# %% [markdown]
# ## Are the soft labels closer to the truth than the mined labels? (embedded benchmark)
# On the training images, score both against the clean truth $t_i$: AUC (ranking) and the Brier
# score (calibration), $\frac{1}{n}\sum_i \big(q_i^c - t_i^c\big)^2$ for labels $q$ (mined or soft).

# %%
frames = [
    ablations.label_quality(
        quality_prep, {"mined": quality_prep.mined_labels(), "soft": quality_soft.values}, quality_prep.rows("train")
    ).assign(layout=quality_layout)
    for quality_layout, (quality_prep, quality_soft) in ((lay, soft_labels(lay)) for lay in ex.layouts(cfg))
    if quality_prep.clean_coverage("train") == "complete"
]
if frames:
    closeness = pd.concat(frames, ignore_index=True)
    write_text(paths.tables / "soft_vs_mined_against_clean.csv", closeness.to_csv(index=False))
    display(closeness.pivot_table(index="layout", columns="source", values=["auc", "brier"]).round(3))
