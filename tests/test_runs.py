"""Runs that name themselves: a run's folder follows from everything that changes it, and nothing else."""
from __future__ import annotations

import dataclasses

import pytest

from paperkit.config import get_profile, resolve
from paperkit.pipeline.specs import ALL_REFERENCES, Pools, SoftLabels, dataset_key, pruned_labels, run_spec

CFG = resolve("smoke", {"teaching": "memorisation"})
KEY = dataset_key(CFG, "nih")
SOFT = SoftLabels.of(CFG, KEY, ALL_REFERENCES, [f"{KEY}/B-a-s0-00000000", f"{KEY}/B-b-s0-11111111"])
POOLS = Pools.of(CFG, SOFT, CFG.k)
OTHER_MODE = "faithful" if CFG.knns_mode == "efficient" else "efficient"
BASE = dict(data=KEY, training_labels=CFG.uncertain_policy, arch=CFG.target_arch, seed=0, variant="B+MODL+KNNS",
            soft=SOFT, pools=POOLS)


def _folder(**kw) -> str:
    args = {**BASE, **kw}
    return run_spec(CFG, args.pop("data"), args.pop("training_labels"), args.pop("arch"), args.pop("seed"),
                    args.pop("variant"), **args).folder


@pytest.mark.parametrize("change", [
    {"seed": 1}, {"arch": "efficientnet_tiny"}, {"variant": "B+MODL"}, {"data": dataset_key(CFG, "nih", 2.0)},
    {"training_labels": "u_zeros"}, {"training_labels": pruned_labels(CFG.uncertain_policy, SOFT)},
    {"changes": {"k": CFG.k + 1}}, {"changes": {"knns_mode": OTHER_MODE}}, {"changes": {"kl_form": "as_printed"}},
    {"changes": {"lambda_modl": 0.3, "gamma_knns": 0.3}}, {"subset": "oof0of2"},
    {"soft": SoftLabels.of(CFG, KEY, "n1", [f"{KEY}/B-a-s0-00000000"])},
    {"pools": Pools.of(CFG, SOFT, CFG.k + 1)}, {"pools": Pools.of(dataclasses.replace(CFG, sigma=2.0), SOFT, CFG.k)},
])
def test_a_run_that_differs_in_anything_gets_its_own_folder(change):
    assert _folder(**change) != _folder()


@pytest.mark.parametrize("field", ["lr", "epochs", "batch_size", "crop", "pretrained", "knns_k_reduction"])
def test_every_profile_setting_names_the_run(field):
    options = {"lr": (3e-4, 1e-2), "epochs": (7, 5), "batch_size": (24, 40), "crop": (24, 28),
               "pretrained": ("imagenet", "none"), "knns_k_reduction": ("mean", "sum")}[field]
    other = resolve(CFG, {field: next(v for v in options if v != getattr(CFG, field))})
    spec = run_spec(other, KEY, CFG.uncertain_policy, CFG.target_arch, 0, "B+MODL+KNNS", soft=SOFT, pools=POOLS)
    assert spec.folder != _folder()


def test_a_change_to_the_profiles_own_value_is_no_change():
    assert _folder(changes={"k": CFG.k, "knns_mode": CFG.knns_mode}) == _folder()


def test_b_is_not_renamed_by_soft_labels_it_does_not_read():
    other = SoftLabels.of(CFG, KEY, "n1", [f"{KEY}/B-a-s0-00000000"])
    assert _folder(variant="B", soft=other, pools=Pools.of(CFG, other, CFG.k + 1)) == _folder(
        variant="B", soft=None, pools=None
    )
    assert _folder(variant="B+MODL", pools=None) == _folder(variant="B+MODL")  # MODL reads no pools


def test_soft_label_identity_is_what_made_them():
    reversed_refs = SoftLabels.of(CFG, KEY, ALL_REFERENCES, [f"{KEY}/B-b-s0-11111111", f"{KEY}/B-a-s0-00000000"])
    assert reversed_refs == SOFT  # an average does not depend on the order of its members
    assert SoftLabels.of(resolve(CFG, {"crop": 24}), KEY, ALL_REFERENCES, [f"{KEY}/B-a-s0-00000000"]) != SoftLabels.of(
        CFG, KEY, ALL_REFERENCES, [f"{KEY}/B-a-s0-00000000"]
    )
    assert SOFT.folder.startswith(f"{KEY}/all-") and POOLS.folder.startswith(f"{KEY}/all-k{CFG.k}-")


def test_the_name_reads_before_its_hash():
    spec = run_spec(
        CFG, KEY, CFG.uncertain_policy, CFG.target_arch, 2, "B+KNNS", soft=SOFT, pools=POOLS, changes={"k": CFG.k + 1}
    )
    prefix, ident = spec.name.rsplit("-", 1)
    assert (
        prefix == f"B+KNNS-{CFG.target_arch}-s2-k={CFG.k + 1}"
        and len(ident) == 8
        and spec.folder == f"{KEY}/{spec.name}"
    )


@pytest.mark.parametrize(
    "kw, watched",
    [
        ({}, True),
        ({"variant": "B", "soft": None, "pools": None}, True),
        ({"seed": 1}, False),
        ({"variant": "B+KNNS"}, False),
        ({"arch": "efficientnet_tiny", "variant": "B"}, False),  # a reference
        ({"changes": {"k": CFG.k + 1}}, False),
        ({"training_labels": "u_zeros", "variant": "B"}, False),
        ({"soft": SoftLabels.of(CFG, KEY, "oof2", ["x"], folds=2)}, False),
        ({"data": dataset_key(CFG, "nih", 2.0)}, False),
    ],
)
def test_memorisation_curves_are_recorded_for_the_headline_target_runs_only(kw, watched):
    args = {**BASE, **kw}
    spec = run_spec(
        CFG,
        args.pop("data"),
        args.pop("training_labels"),
        args.pop("arch"),
        args.pop("seed"),
        args.pop("variant"),
        **args,
    )
    assert spec.monitored is watched


def test_real_data_keys_are_the_layout():
    cfg = get_profile("nih")
    assert dataset_key(cfg, "nih") == "nih" and dataset_key(CFG, "nih").startswith("nih")
