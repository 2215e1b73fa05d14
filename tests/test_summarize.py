"""``python -m paperkit summarize`` from metadata alone, on fixtures of the three sources and on NIH's real metadata."""
from __future__ import annotations

import json

import pytest
from helpers import REAL_COUNTS, write_chexpert, write_mimic, write_nih, xrv_data

from paperkit.orchestration.cli import main as cli_main


def _run(capsys, *argv):
    code = cli_main(["summarize", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_nih_json_counts_and_missing(tmp_path, capsys):
    root = write_nih(tmp_path / "nih")
    (root / "images" / "00000001_000.png").unlink()
    code, out, _ = _run(capsys, "--dataset", "nih", "--root", str(root), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["images"] == 20 and summary["patients"] == 10
    assert summary["splits"]["test"] == 6 and sum(summary["splits"].values()) == 20
    assert summary["labels"]["Hernia"] == 4 and summary["missing_on_disk"] == 1
    assert summary["missing_examples"] == ["00000001_000.png"]


def test_nih_without_official_lists_says_so(tmp_path, capsys):
    code, out, _ = _run(capsys, "--dataset", "nih", "--root", str(write_nih(tmp_path / "nih", lists=False)))
    assert code == 0 and "patient70_10_20" in out and "note: official train_val_list.txt absent" in out


@pytest.mark.parametrize("all_views, images", [(False, 6 + 4), (True, 12 + 4)])
def test_chexpert_value_counts(tmp_path, capsys, all_views, images):
    root = write_chexpert(tmp_path, images=False)
    argv = ["--dataset", "chexpert", "--root", str(root), "--json"] + (["--all-views"] if all_views else [])
    code, out, _ = _run(capsys, *argv)
    summary = json.loads(out)
    n_train = images - 4
    assert code == 0 and summary["images"] == images and summary["missing_on_disk"] == images
    assert summary["labels"]["Cardiomegaly"] == {"1": 0, "0": 4, "-1": n_train, "blank": 0}
    assert summary["labels"]["Enlarged Cardiomediastinum"] == {"1": 0, "0": 4, "-1": 0, "blank": n_train}
    assert summary["rows_with_clean_labels"] == 4


def test_mimic_text(tmp_path, capsys):
    code, out, _ = _run(capsys, "--dataset", "mimic", "--root", str(write_mimic(tmp_path / "m")), "--labeler", "negbio")
    assert code == 0 and "images 4" in out and "train 2   val 1   test 1" in out
    assert "Edema" in out and "1 / 0 / -1 / blank" in out


def test_bad_root_is_an_error_naming_it(tmp_path, capsys):
    code, _, err = _run(capsys, "--dataset", "chexpert", "--root", str(tmp_path / "nowhere"))
    assert code == 2 and "nowhere" in err


def test_real_nih_metadata(tmp_path, capsys):
    (tmp_path / "Data_Entry_2017_v2020.csv.gz").symlink_to(xrv_data() / "Data_Entry_2017_v2020.csv.gz")
    code, out, _ = _run(capsys, "--dataset", "nih", "--root", str(tmp_path), "--json", "--split", "patient70_10_20")
    summary = json.loads(out)
    assert code == 0 and summary["images"] == 112_120 and summary["patients"] == 30_805
    assert summary["labels"] == {c: REAL_COUNTS[c] for c in summary["labels"]}
    assert summary["missing_on_disk"] == 112_120
