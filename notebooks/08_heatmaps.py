# ---
# jupyter:
#   kernelspec:
#     display_name: Python (paperkit)
#     language: python
#     name: paperkit
# ---

# %% [markdown]
# # 08 · Heatmaps (Fig. 5) and localisation, scored
#
# The paper shows PCAM heatmaps (Ye et al. 2020) of B and B+MODL+KNNS and says the target's are
# "more precise in location and size" — qualitatively. Here the embedded benchmark's lesion masks
# let us score it: the pointing game (is the heatmap's maximum inside the lesion?) and IoU of
# the heatmap thresholded at 0.5, per finding, B vs target on the same positive test images.

# %% [markdown]
# The parameters cell (papermill replaces it when `run_all.sh` runs this notebook):

# %% tags=["parameters"]
profile = "cpu"  # smoke | cpu | nih | chexpert
data_root = ""  # your dataset root for the nih / chexpert profiles
overrides = {}  # any Profile field; validated before any work
cases_per_finding = 2  # Fig. 5 shows two cases per finding
max_cases = 60  # positive test cases scored per finding

# %%
import numpy as np
import torch
from IPython.display import Markdown, display

from paperkit import experiment as ex
from paperkit import report
from paperkit.data.augment import augment_batch
from paperkit.figures import HeatmapCase, fig5_heatmap_grid
from paperkit.heatmaps import pcam_maps, score_masks
from paperkit.notebook import setup, show_figure

cfg, paths = setup(profile, data_root, overrides, notebook="08")
layout = "nih" if "nih" in ex.layouts(cfg) else ex.layouts(cfg)[0]
prep, soft, pool = ex.method_inputs(cfg, paths, layout)
seed = cfg.seeds[0]
models = {v: ex.train_run(cfg, paths, prep, cfg.target_arch, seed, v, soft=soft, pools=pool).model.eval()
          for v in ("B", "B+MODL+KNNS")}

# %% [markdown]
# ## Heatmaps and their scores
# The PCAM head (`paperkit.heatmaps.pcam_maps`) gives, for finding $c$ and image $x$, a probability
# map $H_p = \sigma\big(w_c^\top F_p(x) + b_c\big)$ at each position $p$ of the feature map $F$ (the
# per-position logits its pooling attends to), upsampled to the image. Against the lesion mask $M$,
# per positive test case:
# $$\text{pointing hit} = \big[\arg\max_p H_p \in M\big], \qquad
#   \mathrm{IoU} = \frac{|\{H \ge 0.5\} \cap M|}{|\{H \ge 0.5\} \cup M|}$$
# (`paperkit.heatmaps.score_masks`), on the same centre crops the models were scored on.

# %%
test = prep.rows("test")
truth = prep.labels("test")
cases, scores = [], {v: [] for v in models}
for c, finding in enumerate(prep.eval_classes):
    positive = test[truth[:, c] == 1][:max_cases]
    with_mask = [(r, m) for r in positive if (m := ex.finding_mask(cfg, prep, r, finding)) is not None]
    if not with_mask:
        continue
    rows = np.array([r for r, _ in with_mask])
    masks = np.stack([m for _, m in with_mask])
    x = augment_batch(prep.images.load(rows), cfg.crop, train=False)  # centre crops, as the models were scored
    column = int(prep.eval_columns[c])
    maps, probs = {}, {}
    with torch.no_grad():
        for v, model in models.items():
            maps[v] = pcam_maps(model, x)[:, column].numpy()
            probs[v] = torch.sigmoid(model(x))[:, column].numpy()
            scores[v].append(score_masks(maps[v], masks, [finding] * len(rows)))
    image = x[:, 0].numpy()
    for i in range(min(cases_per_finding, len(rows))):
        cases.append(HeatmapCase(finding, image[i], {v: maps[v][i] for v in models},
                                 {v: float(probs[v][i]) for v in models}, mask=masks[i]))
print(f"{len(cases)} cases drawn, findings with masks: {len(scores['B'])}")

# %% [markdown]
# ## Fig. 5: B vs B+MODL+KNNS

# %%
if cases:
    show_figure(fig5_heatmap_grid(cases, paths.figures))

# %% [markdown]
# ## Localisation scores: does the target localise better than B?

# %%
import pandas as pd

if scores["B"]:
    a, b = (pd.concat(scores[v], ignore_index=True) for v in models)
    table = report.localisation_table(a, b)
    report.write_table(table, paths.tables)
    display(Markdown(f"**{table.caption}**"))
    display(table.display)
