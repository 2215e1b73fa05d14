# ---
# jupyter:
#   kernelspec:
#     display_name: Python (paperkit)
#     language: python
#     name: paperkit
# ---

# %% [markdown]
# # 02 · Reference training (the paper's first step)
#
# "All the reference models based on different backbones are pre-trained using the basic
# multi-label classification loss $L_{cls}$" — BCE over the 14 labels. The paper uses $N = 6$ ImageNet
# CNNs (DenseNet-121/169/201, Inception-ResNet-v2, Xception, NASNetLarge), Adam with learning rate
# $10^{-3}$, batch 32, 10 epochs, the learning rate divided by 3 every 2 epochs. Different
# architectures make different mistakes; their average (notebook 03) is the soft label distribution.
#
# **Deviation (CPU profiles, stated):** six small networks train from scratch at a small image size
# instead of the paper's six ImageNet-initialised CNNs (`profile.reference_archs`). Like the paper's
# set they are three DenseNets of growing size (`densenet_tiny`, `_deep`, `_wide` for DenseNet-121/169/201)
# and three other families of comparable strength (Res2Net for Inception-ResNet-v2, EfficientNet for
# NASNet, ResNet for Xception), and the target is the smallest DenseNet.
# On CheXpert the references use U-Ones for uncertain labels, as in the paper.

# %% [markdown]
# The parameters cell (papermill replaces it when `run_all.sh` runs this notebook):

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | nih | chexpert
data_root = ""  # your dataset root for the nih / chexpert profiles
overrides = {}  # any Profile field, e.g. {"epochs": 4}; validated before any work

# %%
import functools

import matplotlib.pyplot as plt
from IPython.display import display

from paperkit.artifacts import write_text
from paperkit.evaluation import report
from paperkit.method.soft_labels import average_predictions
from paperkit.notebook import setup, show_figure
from paperkit.pipeline import experiment as ex
from paperkit.pipeline import sections

cfg, paths = setup(profile, data_root, overrides, notebook="02")
print("references:", ", ".join(cfg.reference_archs))


@functools.cache
def trained_references():
    """Every layout's data and references, trained (or, once finished, only loaded) once, in one call:
    `workers` runs at once over both layouts, the same architecture's two runs side by side."""
    preps = {layout: ex.prepare(cfg, paths, layout) for layout in ex.layouts(cfg)}
    runs = ex.train_grouped(cfg, paths, {layout: sections.references(cfg, prep) for layout, prep in preps.items()})
    return {layout: (preps[layout], dict(zip(cfg.reference_archs, runs[layout]))) for layout in preps}


def references(layout):
    """One layout's data and its references, `(prep, {arch: run})`; each section asks for what it needs."""
    return trained_references()[layout]

# %% [markdown]
# ## Train the references (resumable: finished runs are loaded, interrupted ones resume)
# Each reference $f_n$, $n = 1, \dots, N$, minimises eq. 1 with $\lambda = \gamma = 0$: the binary
# cross-entropy over the $C$ findings of image $x_i$ with mined labels $y_i^j$,
# $$L_{cls}\big(y_i, f_n(x_i)\big) = -\frac{1}{C}\sum_{j=1}^{C}\Big[y_i^j \log f_n^j(x_i) +
# (1 - y_i^j)\log\big(1 - f_n^j(x_i)\big)\Big],$$
# averaged over the batch (`paperkit.method.losses.bce_loss`; CheXpert's uncertain labels are first mapped
# by U-Ones). The learning rate in epoch $e = 0, 1, \dots$ is $\eta\,\rho^{\lfloor e/s \rfloor}$ (the paper:
# $\eta = 10^{-3}$, $\rho = 1/3$, $s = 2$; the profile's `lr`, `lr_gamma`, `lr_step_epochs`).
# Each run names its own folder, `checkpoints/<dataset>/B-<arch>-s0-<hash>`, from everything that
# changes it (`paperkit.pipeline.specs.RunSpec`): another setting is another folder, never a silent retrain.

# %%
for train_layout in ex.layouts(cfg):
    trained = references(train_layout)[1]
    print(f"{train_layout}: " + ", ".join(f"{arch} (best epoch {run.best_epoch})" for arch, run in trained.items()))

# %% [markdown]
# ## Validation curves
# Mean validation AUC per epoch (against the *mined* validation labels: model selection never
# sees clean labels or the test split).

# %%
for curve_layout in ex.layouts(cfg):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for arch, run in references(curve_layout)[1].items():
        ax.plot(run.history["epoch"], run.history["val_auc"], marker="o", label=arch)
    ax.set(title=f"{curve_layout}: references, validation AUC", xlabel="epoch", ylabel="mean AUC")
    ax.legend(fontsize=7)
    show_figure(fig, f"nb02_validation_auc_{curve_layout}")

# %% [markdown]
# ## Each reference's test AUC (clean labels where known), its size, and the ensemble's headroom
# MODL distils the references' average $\frac{1}{N}\sum_n f_n(x)$ into one network, so it can only help where that
# average beats the target network trained alone (the paper, Table 3: Ensemble 2 93.96 vs DenseNet-121 89.66, +4.3).
# Per layout, each reference's test AUC per finding with its parameters and best epoch; the ensemble
# row averages all references' probabilities.

# %%
results = {}
for layout in ex.layouts(cfg):
    prep, refs = references(layout)
    test = prep.rows("test")
    probs = {arch: ex.probabilities(cfg, run, prep, test) for arch, run in refs.items()}
    probs["Ensemble"] = average_predictions(list(probs.values()))
    baseline = cfg.target_arch if cfg.target_arch in refs else cfg.reference_archs[0]
    results[layout] = ex.evaluate(cfg, prep, probs, reference=baseline)
    table = report.reference_auc_table(results[layout], refs)
    write_text(paths.tables / f"references_test_auc_{layout}.csv", table.to_csv())
    display(table.round(3))

# %% [markdown]
# The headroom (mean AUC, %): the ensemble against the mean single reference, the best one, and the
# target's architecture (paired bootstrap CI).

# %%
headroom = report.ensemble_headroom(results)
write_text(paths.tables / "references_ensemble_headroom.csv", headroom.to_csv())
display(headroom.round(2))
