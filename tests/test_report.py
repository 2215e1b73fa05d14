"""The paper's numbers are copied exactly, and every table renders them beside ours."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from paperkit.data.labels import CHEXPERT_TASKS, NIH_CLASSES
from paperkit.evaluation import paper_numbers
from paperkit.evaluation.metrics import compare_models, seed_summary
from paperkit.evaluation.report import (
    ablation_table,
    gain_table,
    k_sweep_table,
    table1_nih,
    table2_chexpert,
    table3_ensembles,
    write_table,
)
from paperkit.orchestration.report_index import write_report_index
from paperkit.paths import RunPaths

FLOAT = re.compile(r"\d+\.\d+")


def _paper_rows(text: str, header: str, caption: str, n_values: int) -> list[list[float]]:
    """Numeric rows of one table of the paper's text, between its header line and its caption."""
    block = text[text.index(header) : text.index(caption)]
    rows = [FLOAT.findall(line)[-n_values:] for line in block.splitlines()[1:] if len(FLOAT.findall(line)) >= n_values]
    return [[float(v) for v in row] for row in rows]


@pytest.mark.parametrize(
    ("table", "header", "caption", "n_values"),
    [
        (paper_numbers.TABLE1_NIH, "Methods Atel.", "Table 1:", 15),
        (paper_numbers.TABLE2_CHEXPERT, "Methods Atelectasis", "Table 2:", 6),
        (paper_numbers.TABLE3_ENSEMBLES, "Methods Mean AUC Params.", "Table 3:", 2),
    ],
)
def test_paper_numbers_match_the_paper_text(shared_dir, table, header, caption, n_values):
    text = (shared_dir / "paper" / "modl-knns-aaai2021.txt").read_text(encoding="utf-8")
    assert table.to_numpy().tolist() == _paper_rows(text, header, caption, n_values)


def test_figure4_gains_and_known_inconsistency():
    gains = paper_numbers.FIG4_K_GAINS["gain"]
    assert gains[3] == 1.14 and gains[5] == 1.68 and gains[7] == 1.98
    assert gains[9] == pytest.approx(2.11) and np.isnan(gains[11])
    assert paper_numbers.TABLE3_ENSEMBLES.loc["B", "mean_auc"] != paper_numbers.TABLE2_CHEXPERT.loc["B", "Mean"]


def _result(classes, models, n=160, seed=0, n_boot=60):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, len(classes))) < 0.3).astype(float)
    scores = {m: y * (0.5 + 0.3 * i) + rng.normal(size=y.shape) for i, m in enumerate(models)}
    return compare_models(y, scores, rng.integers(0, n // 2, n).astype(str), classes, n_boot=n_boot, seed=seed)


METHODS = ["B", "B+MODL", "B+KNNS", "B+MODL+KNNS"]


@pytest.mark.parametrize(
    ("builder", "classes", "models", "paper", "stem"),
    [
        (table1_nih, NIH_CLASSES, METHODS, paper_numbers.TABLE1_NIH, "table1_nih_auc"),
        (
            table2_chexpert,
            CHEXPERT_TASKS,
            [*METHODS, "U-Ones", "LSR-Ones"],
            paper_numbers.TABLE2_CHEXPERT,
            "table2_chexpert_auc",
        ),
    ],
)
def test_auc_tables_put_paper_beside_ours(tmp_path, builder, classes, models, paper, stem):
    result = _result(classes, models)
    table = builder(result)
    assert table.stem == stem
    tidy = table.tidy.set_index(["model", "class"])
    for model in models:
        row = tidy.loc[(model, "Mean")]
        assert row["paper"] == paper.loc[row["paper_row"], "Mean"]
        assert row["ours"] == pytest.approx(100 * result.mean_auc(model))
        assert row["ours_minus_paper"] == pytest.approx(row["ours"] - row["paper"])
        assert row["ci_low"] <= row["ours"] <= row["ci_high"]
    if "U-Ones" in models:
        assert tidy.loc[("U-Ones", "Mean"), "paper_row"] == "Irvin et al. 2019 U-Ones*"
    md = table.to_markdown()
    assert f"{paper.loc['B', classes[0]]:.2f}" in md and f"{100 * result.mean_auc('B+KNNS'):.2f}" in md
    assert "gain over B" in md and "ours - paper" in md
    written = write_table(table, tmp_path)
    assert [p.name for p in written] == [f"{stem}.csv", f"{stem}.md", f"{stem}.tex"]
    assert r"\begin{tabular}" in written[2].read_text()
    back = pd.read_csv(written[0])
    assert len(back) == len(models) * (len(classes) + 1)


def test_table_rejects_a_result_over_other_classes():
    with pytest.raises(ValueError, match="exactly those columns"):
        table2_chexpert(_result(("Atelectasis", "Edema"), ["B"]))


def test_seed_rows_and_na_notes():
    rng = np.random.default_rng(1)
    y = (rng.random((120, 5)) < 0.3).astype(float)
    y[:, 3] = 0  # Edema not evaluable
    results = []
    for seed in (0, 1):
        scores = {m: y + rng.normal(size=y.shape) for m in ("B", "B+MODL+KNNS")}
        with pytest.warns(UserWarning, match="Edema"):
            results.append(compare_models(y, scores, np.arange(120).astype(str), CHEXPERT_TASKS, n_boot=30))
    table = table2_chexpert(results[0], seed_stats=seed_summary(results))
    md = table.to_markdown()
    assert "mean ± sd over seeds" in md and "(n=2)" in md
    assert "n/a" in md and "Mean over 4 of 5 classes" in md


def test_table3_and_ablations(tmp_path):
    result = _result(CHEXPERT_TASKS, ["B", "B+MODL+KNNS", "Ensemble 1", "Ensemble 2"])
    table = table3_ensembles(result, params={"B": 7_980_000, "Ensemble 1": 42_130_000}, throughput={"B": 50.0})
    tidy = table.tidy.set_index("model")
    assert tidy.loc["Ensemble 2", "paper_params_millions"] == 208.33
    assert tidy.loc["B", "paper_mean_auc"] == 89.66 and tidy.loc["B", "ours_params_millions"] == pytest.approx(7.98)
    assert "42.13" in table.to_markdown() and "50.0" in table.to_markdown()
    sweep = _result(CHEXPERT_TASKS, ["B", "K3", "K5", "K9"])
    k_table = k_sweep_table(sweep, {3: "K3", 5: "K5", 9: "K9"})
    assert k_table.stem == "ablation_k_sweep"
    assert k_table.tidy.set_index("model").loc["K5", "paper_gain"] == 1.68
    plain = ablation_table(sweep, "lambda", "lambda sweep")
    assert "paper gain" not in plain.to_markdown()
    for t in (table, k_table, plain):
        write_table(t, tmp_path)
    assert len(list(tmp_path.glob("*.tex"))) == 3


def test_ablation_extra_columns_and_gain_table(tmp_path):
    sweep = _result(NIH_CLASSES, ["B", "w0.1", "w1"])
    table = ablation_table(sweep, "lambda_sweep", "sweep", columns={"validation AUC": {"B": 80.0, "w1": 81.5}})
    tidy = table.tidy.set_index("model")
    assert tidy.loc["w1", "validation AUC"] == 81.5 and np.isnan(tidy.loc["w0.1", "validation AUC"])
    assert "81.50" in table.to_markdown()
    per_seed = {s: _result(NIH_CLASSES, ["B", "B+MODL+KNNS"], seed=s) for s in (0, 1, 2)}
    gains = gain_table(per_seed, "B+MODL+KNNS", "headline_gain_nih", "per seed", summary_row=True)
    assert list(gains.tidy["seed"]) == [0, 1, 2]
    expected = [100 * (r.mean_auc("B+MODL+KNNS") - r.mean_auc("B")) for r in per_seed.values()]
    assert gains.tidy["gain"].to_numpy() == pytest.approx(expected)
    assert (gains.tidy["gain_ci_low"] <= gains.tidy["gain"]).all() and (
        gains.tidy["gain"] <= gains.tidy["gain_ci_high"]
    ).all()
    assert f"{np.mean(expected):+.2f} ± {np.std(expected, ddof=1):.2f}" in gains.to_markdown()
    write_table(gains, tmp_path)
    assert (tmp_path / "headline_gain_nih.csv").is_file()


def test_report_index_lists_every_table_and_figure():
    paths = RunPaths.for_profile("smoke")
    write_table(table1_nih(_result(NIH_CLASSES, METHODS, n_boot=20)), paths.tables)
    paths.figures.mkdir(parents=True)
    for ext in ("png", "pdf"):
        (paths.figures / f"fig3_roc_chexpert.{ext}").write_bytes(b"x")
    report = write_report_index(paths, "smoke", "benchmark", [0, 1], 3725.0, "test machine", commit="abc123")
    text = report.read_text()
    assert report == paths.root / "REPORT.md"
    for needle in (
        "tables/table1_nih_auc.md",
        "tables/table1_nih_auc.csv",
        "tables/table1_nih_auc.tex",
        "figures/fig3_roc_chexpert.png",
        "figures/fig3_roc_chexpert.pdf",
        "`smoke`",
        "benchmark",
        "0, 1",
        "abc123",
        "1:02:05",
        "test machine",
        "82.42",
    ):
        assert needle in text, needle


def test_report_index_opens_with_verdict_then_deviations():
    from paperkit.config import apply_overrides, get_profile

    paths = RunPaths.for_profile("cpu")
    write_table(table1_nih(_result(NIH_CLASSES, METHODS, n_boot=20)), paths.tables)
    (paths.tables / "verdict.md").write_text("# Verdict\n\nB+MODL+KNNS beats B on both layouts.\n")
    (paths.tables / "verdict.csv").write_text("layout,gain\n")
    cfg = apply_overrides(get_profile("cpu"), {"epochs": 3})
    text = write_report_index(paths, cfg, cfg.dataset, cfg.seeds, 60.0, "test machine", commit="abc").read_text()
    lines = text.splitlines()
    assert lines[0] == "# Results: profile `cpu`" and lines[2] == "## Verdict"
    assert lines[4] == "B+MODL+KNNS beats B on both layouts."
    assert "# Verdict" not in text.replace("## Verdict", "")
    assert text.index("## Verdict") < text.index("## Deviations from the paper") < text.index("## Tables")
    assert "| what | ours | paper | why |" in text
    assert "| `epochs` | 3 (override) | 10 |" in text and "| `knns_mode` | efficient | faithful |" in text
    assert "### verdict" not in text and "### table1_nih_auc" in text
    assert "([csv](tables/verdict.csv))" in text


def test_report_index_without_verdict_starts_with_deviations():
    paths = RunPaths.for_profile("nih")
    text = write_report_index(paths, "nih", "nih", [0], 1.0, "test machine", commit="abc").read_text()
    assert "## Verdict" not in text
    section = text[text.index("## Deviations from the paper") : text.index("## Run")]
    assert "overrides of this run are not known" in section
    assert "`epochs`" not in section and "per-class Bernoulli KL" in section  # only the kit's choices


def test_localisation_table(tmp_path):
    from paperkit.evaluation.report import localisation_table

    a = pd.DataFrame(
        {
            "case": range(4),
            "finding": ["Mass"] * 4,
            "pointing_hit": [True, False, False, False],
            "iou": [0.1, 0.2, 0.0, 0.3],
        }
    )
    b = a.assign(pointing_hit=[True, True, True, False], iou=[0.4, 0.5, 0.2, 0.3])
    table = localisation_table(a, b)
    assert table.stem == "localisation_masks"
    tidy = table.tidy.set_index("metric")
    assert tidy.loc["pointing_hit", "diff"] == pytest.approx(0.5)
    assert "B+MODL+KNNS" in table.to_markdown()
    write_table(table, tmp_path)
