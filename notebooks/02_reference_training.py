# %% [markdown]
# # 02 · Reference training (the paper's first step)
#
# "All the reference models based on different backbones are pre-trained using the basic
# multi-label classification loss L_cls" — BCE over the 14 labels. The paper uses N = 6 ImageNet
# CNNs (DenseNet-121/169/201, Inception-ResNet-v2, Xception, NASNetLarge), Adam lr 1e-3, batch 32,
# 10 epochs, lr ÷ 3 every 2 epochs. Different architectures make different mistakes; their
# average (notebook 03) is the soft label distribution.
#
# **Deviation (CPU profiles, stated):** six small, *different* families train from scratch at a
# small image size instead of the paper's six ImageNet-initialised CNNs (`profile.reference_archs`).
# On CheXpert the references use U-Ones for uncertain labels, as in the paper.

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | nih | chexpert
data_root = ""  # your dataset root for the nih / chexpert profiles
overrides = {}  # any Profile field, e.g. {"epochs": 4}; validated before any work

# %%
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from paperkit import experiment as ex
from paperkit.artifacts import write_text
from paperkit.models import count_parameters
from paperkit.notebook import setup

cfg, paths = setup(profile, data_root, overrides)
print("references:", ", ".join(cfg.reference_archs))

# %% [markdown]
# ## Train the references (resumable: finished runs are loaded, interrupted ones resume)

# %%
references = {}
for layout in ex.layouts(cfg):
    prep = ex.prepare(cfg, paths, layout)
    references[layout] = (prep, ex.train_references(cfg, paths, prep, seed=0))

# %% [markdown]
# ## Validation curves
# Mean validation AUC per epoch (against the *mined* validation labels: model selection never
# sees clean labels or the test split).

# %%
for layout, (prep, refs) in references.items():
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for arch, run in refs.items():
        ax.plot(run.history["epoch"], run.history["val_auc"], marker="o", label=arch)
    ax.set(title=f"{layout}: references, validation AUC", xlabel="epoch", ylabel="mean AUC")
    ax.legend(fontsize=7)
    plt.show()

# %% [markdown]
# ## Each reference's test AUC (clean labels where known) and size

# %%
for layout, (prep, refs) in references.items():
    test = prep.rows("test")
    probs = {arch: ex.probabilities(run, prep, test, cfg) for arch, run in refs.items()}
    result = ex.evaluate(cfg, prep, probs, reference=cfg.reference_archs[0])
    table = result.wide("auc")
    table = table.assign(params=[count_parameters(refs[m].model) for m in table.index],
                         best_epoch=[refs[m].best_epoch for m in table.index])
    write_text(paths.tables / f"references_test_auc_{layout}.csv", table.to_csv())
    display(table.round(3))
