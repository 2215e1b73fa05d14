# ---
# jupyter:
#   kernelspec:
#     display_name: Python (paperkit)
#     language: python
#     name: paperkit
# ---

# %% [markdown]
# # 04 · K-nearest-neighbour pools in soft-label space (eq. 3)
#
# "Before training the target network, the $K$ nearest neighbors of an image (the anchor) are
# pre-computed based on the fixed soft label distribution", with a local similarity $s_i^k$ (eq. 3,
# below), $\sigma = 1$, $K = 9$. Neighbours are other *training* images; the anchor itself is excluded.
#
# **Note:** with 14 probabilities in $[0, 1]$ and $\sigma = 1$, $s_i^k$ stays close to 1 for every
# neighbour ($\|l_i - l_i^k\|^2$ is small), so in practice KNNS weighs the $K$ neighbours nearly equally.

# %% [markdown]
# The parameters cell (papermill replaces it when `run_all.sh` runs this notebook):

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | nih | chexpert
data_root = ""  # your dataset root for the nih / chexpert profiles
overrides = {}  # any Profile field, e.g. {"k": 5}; validated before any work
n_anchors = 3  # anchors shown with their neighbours

# %%
import functools

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display

from paperkit.artifacts import write_text
from paperkit.method.knn import neighbour_agreement
from paperkit.notebook import setup, show_figure
from paperkit.pipeline import experiment as ex

cfg, paths = setup(profile, data_root, overrides, notebook="04")


@functools.cache
def pools(layout):
    """One layout's data and its pools, `(index, similarity)`, from notebook 03's soft labels, computed
    (or loaded) once; each section asks for what it needs."""
    prep = ex.prepare(cfg, paths, layout)
    soft = ex.soft_labels(cfg, paths, prep, ex.train_references(cfg, paths, prep))
    return prep, ex.pools(cfg, paths, prep, soft, cfg.k).arrays

# %% [markdown]
# ## The pools: K nearest neighbours in soft-label space and their similarity (eq. 3)
# For anchor $x_i$ with soft label $l_i$ (notebook 03), its neighbours $x_i^1, \dots, x_i^K$ are the
# $K$ training images whose soft labels are nearest in Euclidean distance, and
# $$s_i^k = \begin{cases} \exp\!\Big(-\dfrac{\|l_i - l_i^k\|^2}{2\sigma^2}\Big) & k \in \{1, \dots, K\}\\[4pt]
#   0 & \text{otherwise}\end{cases}$$
# (`paperkit.method.knn.neighbour_pools`, exact search). `index[i]` holds the neighbours' positions among the
# training images, nearest first; `similarity[i]` their $s_i^k$.

# %%
for layout in ex.layouts(cfg):
    print(f"{layout}: pool {pools(layout)[1][0].shape}, K={cfg.k}, sigma={cfg.sigma}")

# %% [markdown]
# ## Anchors and their neighbours

# %%
anchor_layout = ex.layouts(cfg)[0]
anchor_prep, (anchor_index, anchor_similarity) = pools(anchor_layout)
train = anchor_prep.rows("train")
shown = min(cfg.k, 6)
grid, axes = plt.subplots(n_anchors, shown + 1, figsize=(1.6 * (shown + 1), 1.8 * n_anchors), squeeze=False)
for a in range(n_anchors):
    rows = [train[a]] + [train[j] for j in anchor_index[a, :shown]]
    titles = ["anchor"] + [f"s={s:.3f}" for s in anchor_similarity[a, :shown]]
    for cell, row, title in zip(axes[a], rows, titles):
        cell.imshow(anchor_prep.images.load(np.array([row]))[0], cmap="gray")
        cell.set_title(title, fontsize=7)
        cell.axis("off")
show_figure(grid, f"nb04_neighbours_{anchor_layout}")

# %% [markdown]
# ## The similarity histogram, and whether neighbours share the anchor's clean findings
# The agreement is the fraction of (anchor, neighbour) pairs whose clean finding sets are identical,
# $\frac{1}{nK}\sum_{i,k} [\,t_i = t_i^k\,]$, against the same fraction for random images
# (`paperkit.method.knn.neighbour_agreement`).

# %%
for hist_layout in ex.layouts(cfg):
    prep, (index, similarity) = pools(hist_layout)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.hist(similarity.ravel(), bins=40)
    ax.set(title=f"{hist_layout}: $s_i^k$ over all anchors (K={index.shape[1]})", xlabel="similarity $s_i^k$")
    show_figure(fig, f"nb04_similarity_{hist_layout}")
    truth = prep.dataset.clean_labels
    if truth is not None:
        share = neighbour_agreement(truth[prep.rows("train")], index)
        write_text(paths.tables / f"pools_neighbour_agreement_{hist_layout}.csv", share.to_csv())
        display(share.round(3))
