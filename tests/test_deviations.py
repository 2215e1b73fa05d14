"""Departures from the paper are derived from the profile, and every Profile field is decided."""
from __future__ import annotations

from dataclasses import fields, replace

import pytest

from paperkit.config import PROFILES, Profile, apply_overrides, get_profile
from paperkit.pipeline import deviations as dv

ALWAYS = {"kl_form", "head", "flip", "best_epoch", "score_epoch", "loss_reduction", "bootstrap", "amp"}


def _fields(profile: Profile, kind: str = "setting") -> set[str]:
    return {d.field for d in dv.deviations(profile) if d.kind == kind}


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_named_profile_lists_exactly_its_differing_settings(name):
    profile = get_profile(name)
    devs = dv.deviations(profile)
    assert all(d.notebooks and set(d.notebooks) <= set(dv.ALL_NOTEBOOKS) for d in devs)
    assert all(d.why and d.ours and d.paper for d in devs)
    listed = _fields(profile)
    for field in dv.SETTINGS:
        if field in listed:
            assert getattr(profile, field) != getattr(dv.PAPER, field), field
    assert _fields(profile, "choice") >= ALWAYS


def test_cpu_profile_departures():
    listed = _fields(get_profile("cpu"))
    assert {"crop", "resize", "epochs", "pretrained", "knns_mode", "dataset", "n_images", "reference_archs",
            "target_arch", "seeds"} <= listed
    assert not listed & {"lr", "batch_size", "lambda_modl", "gamma_knns", "k", "sigma", "knns_k_reduction"}
    by_field = {d.field: d for d in dv.deviations(get_profile("cpu"))}
    assert (by_field["crop"].ours, by_field["crop"].paper) == ("56", "224")
    assert by_field["pretrained"].ours == "none"
    assert by_field["seeds"].paper == "one run"


@pytest.mark.parametrize("name", ["nih", "chexpert"])
def test_paper_profiles_list_only_the_kits_choices(name):
    profile = get_profile(name)
    assert _fields(profile) == set()
    assert {d.kind for d in dv.deviations(profile)} == {"choice"}


def test_paper_values_list_only_the_always_made_choices():
    paper = replace(Profile(), dataset="nih", split="patient70_10_20", pretrained="/weights")
    assert {d.field for d in dv.deviations(paper)} == ALWAYS
    assert {d.field for d in dv.deviations(dv.PAPER)} == ALWAYS


def test_override_appears_and_is_marked():
    profile = apply_overrides(get_profile("nih"), {"epochs": 3, "knns_k_reduction": "mean"})
    by_field = {d.field: d for d in dv.deviations(profile)}
    assert by_field["epochs"].ours == "3 (override)" and by_field["epochs"].paper == "10"
    assert by_field["knns_k_reduction"].ours == "mean (override)"
    assert by_field["knns_k_reduction"].paper == "sum"


@pytest.mark.parametrize(
    ("changes", "field", "listed"),
    [
        ({"kl_form": "as_printed"}, "kl_form", False),  # the printed form is the paper's
        ({"pretrained": "imagenet"}, "pretrained", False),
        ({"pretrained": "none"}, "pretrained", True),
        ({"seeds": (0, 1)}, "seeds", True),
        ({"split": "official"}, "split", True),
        ({"dataset": "mimic", "data_root": "/x"}, "dataset", True),
        ({"uncertain_policy": "u_zeros"}, "uncertain_policy", False),  # nih has no uncertain labels
        ({"bootstrap": 0}, "bootstrap", False),
    ],
)
def test_single_fields(changes, field, listed):
    profile = apply_overrides(get_profile("nih"), changes)
    assert (field in {d.field for d in dv.deviations(profile)}) is listed


def test_dataset_specific_fields():
    chexpert = apply_overrides(get_profile("chexpert"), {"uncertain_policy": "u_zeros", "frontal_only": False})
    by_field = {d.field: d for d in dv.deviations(chexpert)}
    assert by_field["uncertain_policy"].paper == "u_ones"
    assert by_field["frontal_only"].ours == "frontal and lateral"
    assert "frontal_only" not in _fields(get_profile("cpu"), "choice")  # the benchmark renders frontal views
    assert "split" not in _fields(get_profile("cpu"))  # its NIH layout always uses the official lists


def test_head_is_stated_either_way():
    avg = {d.field: d for d in dv.deviations(apply_overrides(get_profile("nih"), {"head": "avg"}))}
    assert "CAM" in avg["head"].ours and "PCAM pooling" not in avg["head"].ours


def test_notebook_filter():
    cpu = get_profile("cpu")
    for nb in dv.ALL_NOTEBOOKS:
        assert all(dv.TRAINS_LIKE.get(nb, nb) in d.notebooks or nb in d.notebooks for d in dv.deviations(cpu, nb))
    assert dv.deviations(cpu, "09") == dv.deviations(cpu, "05")  # the lab trains the target as 05 does
    assert "knns_mode" in {d.field for d in dv.deviations(cpu, "05")}
    assert "knns_mode" not in {d.field for d in dv.deviations(cpu, "01")}
    per_notebook = {(d.field, d.kind) for nb in dv.ALL_NOTEBOOKS for d in dv.deviations(cpu, nb)}
    assert len(dv.deviations(cpu)) == len(per_notebook)


def test_every_profile_field_is_decided():
    """A new Profile field must get a why-text, a choice, or be marked as no paper setting."""
    settings, choices, other = set(dv.SETTINGS), {c.field for c in dv.CHOICES}, set(dv.NOT_PAPER_SETTINGS)
    assert not (settings & choices or settings & other or choices & other)
    all_fields = {f.name for f in fields(Profile)}
    assert all_fields - (settings | choices | other) == set()
    assert settings <= all_fields  # no why-text for a field that no longer exists
    differing = {f.name for p in PROFILES.values() for f in fields(Profile)
                 if getattr(p, f.name) != getattr(Profile(), f.name)}
    assert differing <= settings | choices | other


def test_markdown_renders_every_deviation():
    devs = dv.deviations(get_profile("cpu"))
    table = dv.markdown_table(devs)
    assert table.splitlines()[0] == "| what | ours | paper | why |"
    assert len(table.splitlines()) == 2 + len(devs)
    assert "`epochs` | 6 | 10 |" in table
    assert dv.markdown_list(devs).count("\n- ") == len(devs) - 1


def test_setup_prints_the_notebooks_deviations(capsys):
    from paperkit.notebook import setup

    cfg, _ = setup("cpu", notebook="05")
    out = capsys.readouterr().out
    assert "notebook 05" in out and "knns_mode" in out and "n_images" not in out


def test_setup_shows_markdown_in_a_kernel(monkeypatch):
    import IPython.display

    from paperkit import notebook

    shown = []
    monkeypatch.setattr(notebook, "in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", shown.append)
    notebook.show_deviations(get_profile("cpu"), "02")
    [markdown] = shown
    assert isinstance(markdown, IPython.display.Markdown) and "- **pretrained**: none" in markdown.data
