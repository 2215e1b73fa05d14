"""ImageNet initialisation without network: folders of <arch>.pth, their manifest, timm's cache, the offline check.

Nothing here downloads: "ImageNet" weights are state dicts of randomly initialised timm models,
written either as files or into a temporary Hugging Face cache that timm reads in offline mode.
"""
from __future__ import annotations

import dataclasses
import http.server
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path
from typing import Callable, Iterator

import huggingface_hub.constants
import pytest
import timm
import torch
from safetensors.torch import save_file

from paperkit import models
from paperkit.config import ConfigError, get_profile, trained_archs
from paperkit.models import create_model
from paperkit.orchestration import cli, weights

REPO = Path(__file__).resolve().parent.parent
ARCH = "resnet10t"  # small, with ImageNet weights on the Hugging Face hub
ALTERNATIVES = ("-p pretrained=/path/to/DIR", "python -m paperkit weights --out DIR")


def _profile(pretrained: str, archs: tuple[str, ...] = (ARCH, "densenet121")):
    return dataclasses.replace(get_profile("smoke"), pretrained=pretrained, reference_archs=archs,
                               target_arch=archs[-1])


@pytest.fixture
def empty_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Empty Hugging Face and torch hub caches under ``tmp_path``, for this process and its children."""
    hub = tmp_path / "hf" / "hub"
    hub.mkdir(parents=True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    return hub


@pytest.fixture
def offline_hub(empty_caches: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], dict[str, torch.Tensor]]:
    """Offline mode plus a function that puts a random state dict of an arch into the hub cache as timm's weights."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def cache(arch: str) -> dict[str, torch.Tensor]:
        repo, _, _ = timm.models.get_pretrained_cfg(arch).hf_hub_id.partition("@")
        folder = empty_caches / f"models--{repo.replace('/', '--')}"
        commit = "0" * 40
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text(commit)
        snapshot = folder / "snapshots" / commit
        snapshot.mkdir(parents=True)
        state = {k: v.contiguous() for k, v in timm.create_model(arch, pretrained=False).state_dict().items()}
        save_file(state, str(snapshot / "model.safetensors"))
        return state

    return cache


@pytest.fixture
def http_server() -> Iterator[str]:
    """A local HTTP server answering every request, as a reachable hub."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers, as a hub behind a dead route."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """Every HTTP probe of the hub, as ``(url, timeout)`` the way ``urllib.request.urlopen`` receives it.

    A probe without a bounded timeout could hang for minutes (timm retries for ~53 s); what is checked is that
    each probe carries the timeout it was given, not how long it took (a hang is pytest-timeout's to catch).
    """
    calls: list[tuple[str, object]] = []
    real = urllib.request.urlopen

    def spy(request, *args, **kwargs):
        calls.append((getattr(request, "full_url", request), kwargs.get("timeout")))
        return real(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", spy)
    return calls


def _closed_port() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("arch", ["resnet18", "densenet121"])
def test_folder_weights_sum_rgb_stem_like_timm(tmp_path: Path, arch: str) -> None:
    """A 1-channel model from a folder equals timm's own in_chans=1 loading of the same file (RGB summed)."""
    source = timm.create_model(arch, pretrained=False)
    path = tmp_path / f"{arch}.pth"
    torch.save(source.state_dict(), path)
    model = create_model(arch, 3, in_chans=1, pretrained=path).eval()

    stem = source.pretrained_cfg["first_conv"] + ".weight"
    summed = {k: v for k, v in source.state_dict().items() if not k.startswith(source.pretrained_cfg["classifier"])}
    summed[stem] = summed[stem].sum(dim=1, keepdim=True)
    by_hand = timm.create_model(arch, pretrained=False, num_classes=0, global_pool="", in_chans=1).eval()
    by_hand.load_state_dict(summed)
    by_timm = timm.create_model(arch, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)), num_classes=0,
                                global_pool="", in_chans=1).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model.features(x), by_hand.forward_features(x))
        torch.testing.assert_close(model.features(x), by_timm.forward_features(x))


def test_imagenet_from_cache_equals_saved_folder(offline_hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """pretrained="imagenet" reads timm's cache; save_weights writes the same tensors, with a manifest."""
    state = offline_hub(ARCH)
    from_hub = create_model(ARCH, 3, pretrained="imagenet").eval()
    torch.testing.assert_close(from_hub.backbone.conv1[0].weight, state["conv1.0.weight"].sum(dim=1, keepdim=True))

    out = weights.save_weights([ARCH], tmp_path / "w")
    manifest = weights.read_manifest(out)["files"][f"{ARCH}.pth"]
    assert manifest["arch"] == ARCH and manifest["timm"] == timm.__version__
    assert manifest["sha256"] == weights.file_sha256(out / f"{ARCH}.pth")
    assert not list(out.glob(".tmp-*"))
    from_folder = create_model(ARCH, 3, pretrained=out / f"{ARCH}.pth").eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(from_folder.features(x), from_hub.features(x))

    def no_download(arch: str) -> None:
        raise AssertionError(f"{arch} downloaded again although its file is current")

    monkeypatch.setattr(models, "imagenet_state_dict", no_download)
    assert weights.save_weights([ARCH], out) == out


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "hub unreachable"])
def test_check_passes_offline_when_cached(offline_hub, probes, monkeypatch: pytest.MonkeyPatch, offline: str) -> None:
    """Cached weights need no network; the kernels are then told to stay offline rather than retry the hub."""
    for arch in (ARCH, "densenet121"):
        offline_hub(arch)
    if offline == "hub unreachable":
        _no_proxy(monkeypatch)
        monkeypatch.delenv("HF_HUB_OFFLINE")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_ENDPOINT", _closed_port())
    weights.check_pretrained(_profile("imagenet"))
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    if offline == "HF_HUB_OFFLINE":
        assert probes == []  # offline mode: the hub is not even asked
    else:  # one bounded probe of the hub, not timm's retries
        assert probes and all(timeout == weights.REACH_TIMEOUT_S for _, timeout in probes), probes


def test_check_passes_uncached_when_hub_answers(empty_caches, http_server: str,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _no_proxy(monkeypatch)
    monkeypatch.setenv("HF_ENDPOINT", http_server)
    weights.check_pretrained(_profile("imagenet"))


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "closed port", "silent server", "reachability"])
def test_offline_uncached_fails_fast_naming_the_folder_alternative(
    empty_caches, silent_server: str, probes, monkeypatch: pytest.MonkeyPatch, offline: str
) -> None:
    _no_proxy(monkeypatch)
    monkeypatch.setattr(weights, "REACH_TIMEOUT_S", 1.0)
    if offline == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(weights, "_reachable_all", lambda urls, timeout=None: pytest.fail("probed the hub"))
    elif offline == "closed port":
        monkeypatch.setenv("HF_ENDPOINT", _closed_port())
    elif offline == "silent server":
        monkeypatch.setenv("HF_ENDPOINT", silent_server)
    else:
        monkeypatch.setattr(weights, "_reachable_all", lambda urls, timeout=None: [False] * len(urls))
    with pytest.raises(ConfigError) as err:
        weights.check_pretrained(_profile("imagenet"))
    message = str(err.value)
    assert "\n" not in message and f"{ARCH}, densenet121" in message
    assert all(alternative in message for alternative in ALTERNATIVES)
    if offline in ("closed port", "silent server"):  # probed, with the bounded timeout the message names
        assert probes and all(timeout == 1.0 for _, timeout in probes), probes
        assert "did not answer within 1 s" in message
    else:  # offline mode, or the reachability answer given: no probe of the hub at all
        assert probes == []


@pytest.mark.parametrize("url, expected",
                         [("server", True), ("closed", False), ("silent", False), ("not a url", False)])
def test_reachable(http_server: str, silent_server: str, probes, monkeypatch: pytest.MonkeyPatch, url: str,
                   expected: bool) -> None:
    _no_proxy(monkeypatch)
    target = {"server": http_server, "closed": _closed_port(), "silent": silent_server}.get(url, url)
    assert weights.reachable(target, timeout=0.5) is expected
    assert all(timeout == 0.5 for _, timeout in probes), probes  # the timeout reaches the socket
    assert [u for u, _ in probes] == ([] if url == "not a url" else [target])


def test_imagenet_refused_for_archs_without_weights() -> None:
    with pytest.raises(ConfigError, match="no ImageNet weights for efficientnet_tiny, byobnet_tiny, densenet_tiny"):
        weights.check_pretrained(dataclasses.replace(get_profile("smoke"), pretrained="imagenet"))
    with pytest.raises(ConfigError, match="unknown timm architecture.*no_such_net"):
        weights.check_pretrained(_profile("imagenet", ("no_such_net", ARCH)))


def test_folder_lists_every_missing_file(tmp_path: Path) -> None:
    torch.save(timm.create_model(ARCH).state_dict(), tmp_path / f"{ARCH}.pth")
    profile = _profile(str(tmp_path), (ARCH, "densenet121", "densenet169"))
    missing = r"lacks densenet121\.pth, densenet169\.pth;.*--archs densenet121,densenet169"
    with pytest.raises(ConfigError, match=missing):
        weights.check_pretrained(profile)
    weights.check_pretrained(_profile(str(tmp_path), (ARCH,)))


@pytest.mark.parametrize("folder, match", [("relative/weights", "absolute"), ("/no/such/folder", "not a folder")])
def test_folder_must_be_an_absolute_folder(folder: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        weights.check_pretrained(_profile(folder))


def test_manifest_mismatch_names_the_file(offline_hub, tmp_path: Path) -> None:
    offline_hub(ARCH)
    out = weights.save_weights([ARCH], tmp_path / "w")
    path = out / f"{ARCH}.pth"
    torch.save(timm.create_model(ARCH).state_dict(), path)  # same layout, other tensors
    with pytest.raises(ConfigError, match=f"{path}.*sha256.*--archs {ARCH}"):
        create_model(ARCH, 3, pretrained=path)
    with pytest.raises(ConfigError, match=f"{path}.*sha256"):
        weights.check_pretrained(_profile(str(out), (ARCH,)))


def test_none_needs_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights, "_reachable_all", lambda urls, timeout=None: pytest.fail("probed the hub"))
    weights.check_pretrained(get_profile("smoke"))


def test_nih_trains_the_papers_networks() -> None:
    """The six references; the target, DenseNet-121, is one of them."""
    assert trained_archs(get_profile("nih")) == models.paper_reference_archs()
    assert trained_archs(get_profile("cpu")) == get_profile("cpu").reference_archs


def test_weights_verb(offline_hub, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    offline_hub(ARCH)
    assert cli.main(["weights", "--out", str(tmp_path / "w"), "--archs", ARCH]) == 0
    assert (tmp_path / "w" / f"{ARCH}.pth").is_file() and (tmp_path / "w" / weights.MANIFEST).is_file()
    assert f"pretrained={tmp_path / 'w'}" in capsys.readouterr().out
    assert cli.main(["weights", "--out", str(tmp_path / "w"), "--archs", "densenet_tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "densenet_tiny" in err and "\n" not in err


@pytest.mark.parametrize("params, expected", [
    ((), "no ImageNet weights for efficientnet_tiny, byobnet_tiny, densenet_tiny"),
    (("-p", f"reference_archs={ARCH}", "-p", f"target_arch={ARCH}"), "-p pretrained=/path/to/DIR"),
])
def test_run_fails_before_any_notebook(tmp_path: Path, params: tuple[str, ...], expected: str) -> None:
    """run_all.sh -p pretrained=imagenet on an offline machine stops before any notebook, with one line."""
    results = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), TORCH_HOME=str(tmp_path / "torch"),
               PAPERKIT_RESULTS=str(results), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "paperkit", "run", "--profile", "smoke", "-p", "pretrained=imagenet",
                           *params], cwd=REPO, env=env, capture_output=True, text=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert not (results / "smoke" / "executed").exists() and "paperkit: profile" not in proc.stdout
