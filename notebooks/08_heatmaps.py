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
import functools

import pandas as pd
from IPython.display import Markdown, display

from paperkit.evaluation import report
from paperkit.evaluation.figures import fig5_heatmap_grid
from paperkit.notebook import setup, show_figure
from paperkit.pipeline import experiment as ex
from paperkit.pipeline.localisation import mask_localisation

cfg, paths = setup(profile, data_root, overrides, notebook="08")
layout = "nih" if "nih" in ex.layouts(cfg) else ex.layouts(cfg)[0]
seed = cfg.seeds[0]


@functools.cache
def targets():
    """The layout's data and B and B+MODL+KNNS of the first seed, as notebook 05 trained them (loaded)."""
    prep, soft, pool = ex.method_inputs(cfg, paths, layout)
    return prep, {v: ex.train_run(cfg, paths, prep, cfg.target_arch, seed, v, soft=soft, pools=pool).model.eval()
                  for v in ("B", "B+MODL+KNNS")}


@functools.cache
def localisation():
    """The heatmaps' cases (Fig. 5) and their scores per target, computed once; each section asks for them."""
    prep, models = targets()
    return mask_localisation(cfg, prep, models, max_cases=max_cases, cases_per_finding=cases_per_finding)


# %% [markdown]
# ## The two targets
# B and B+MODL+KNNS of the first seed on the NIH layout (else the profile's first), as notebook 05
# trained them (their finished runs are loaded).

# %%
print(f"{layout} layout, seed {seed}: " + ", ".join(targets()[1]))

# %% [markdown]
# ## Heatmaps and their scores
# The PCAM head (`paperkit.evaluation.heatmaps.pcam_maps`) gives, for finding $c$ and image $x$, a probability
# map $H_p = \sigma\big(w_c^\top F_p(x) + b_c\big)$ at each position $p$ of the feature map $F$ (the
# per-position logits its pooling attends to), upsampled to the image. Against the lesion mask $M$,
# per positive test case:
# $$\text{pointing hit} = \big[\arg\max_p H_p \in M\big], \qquad
#   \mathrm{IoU} = \frac{|\{H \ge 0.5\} \cap M|}{|\{H \ge 0.5\} \cup M|}$$
# (`paperkit.evaluation.heatmaps.score_masks`), on the same centre crops the models were scored on
# (`paperkit.pipeline.localisation.mask_localisation`: up to `max_cases` cases per finding, the first
# `cases_per_finding` of them drawn in Fig. 5).

# %%
cases, scores = localisation()
print(f"{len(cases)} cases drawn, findings with masks: {len(scores['B'])}")

# %% [markdown]
# ## Fig. 5: B vs B+MODL+KNNS

# %%
if localisation()[0]:
    show_figure(fig5_heatmap_grid(localisation()[0], paths.figures))

# %% [markdown]
# ## Localisation scores: does the target localise better than B?

# %%
if localisation()[1]["B"]:
    a, b = (pd.concat(localisation()[1][v], ignore_index=True) for v in ("B", "B+MODL+KNNS"))
    table = report.localisation_table(a, b)
    report.write_table(table, paths.tables)
    display(Markdown(f"**{table.caption}**"))
    display(table.display)
