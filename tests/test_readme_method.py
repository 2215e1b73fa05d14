"""README's own-method example runs as printed: it registers a loss that trains and names its runs."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from paperkit.config import resolve
from paperkit.method import noisy_losses
from paperkit.pipeline.specs import dataset_key, run_spec

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_method_block() -> str:
    text = README.read_text()
    section = text.split("## Your own label-noise method", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_registers_a_method_that_names_its_run(monkeypatch) -> None:
    monkeypatch.setattr(noisy_losses, "_REGISTRY", dict(noisy_losses._REGISTRY))
    code = readme_method_block()
    assert len(code.strip().splitlines()) <= 15
    exec(compile(code, "README.md", "exec"), {})
    method = noisy_losses.get_method("symmetric_ce")
    logits = torch.randn(8, 3, requires_grad=True)
    targets = (torch.rand(8, 3) < 0.3).float()
    loss = method.loss(logits, targets, None, None, torch.arange(8), 0, method.resolve(None), {})
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    plain = noisy_losses.get_method("bce").loss(logits, targets, None, None, torch.arange(8), 0, None, {})
    assert loss.item() > plain.item()  # the reverse term adds a positive amount
    cfg = resolve("smoke", {})
    spec = run_spec(cfg, dataset_key(cfg, "nih"), cfg.uncertain_policy, cfg.target_arch, 0,
                    changes={"method": "symmetric_ce"})
    assert "method=symmetric_ce" in spec.name
    assert spec.folder != run_spec(cfg, dataset_key(cfg, "nih"), cfg.uncertain_policy, cfg.target_arch, 0).folder
