"""ImageNet weights: check up front that a profile's ``pretrained`` can be met, and save them for offline machines.

A profile's ``pretrained`` is ``none`` (from scratch), ``imagenet`` (timm downloads each network's
weights once into the Hugging Face or torch hub cache) or a folder of ``<timm arch>.pth`` state
dicts. :func:`check_pretrained` decides in seconds, before any notebook trains, whether that works
here: an offline machine without cached weights would otherwise wait for timm's retries inside
the first training notebook. ``python -m paperkit weights --out DIR`` (:func:`save_weights`) writes
the folder on an online machine, with a ``MANIFEST.json`` of sha256 sums that loading checks.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable, Sequence
from urllib.parse import urlsplit

from paperkit.artifacts import atomic_path, file_sha256, write_json
from paperkit.config import ConfigError, Profile, get_profile, trained_archs
from paperkit.models.pretrained import MANIFEST, read_manifest, verify_file

log = logging.getLogger(__name__)

#: How long the hub may take to answer before the machine counts as offline.
REACH_TIMEOUT_S = 3.0
#: What an offline user can do instead; ends every error about unavailable weights.
_ALTERNATIVE = ("on an online machine run `python -m paperkit weights --out DIR{archs}`, copy DIR here and pass "
                "-p pretrained=/path/to/DIR (or -p pretrained=none to train from scratch)")


def check_pretrained(profile: Profile) -> None:
    """Fail in seconds, before any training, if ``profile.pretrained`` cannot be satisfied here.

    ``none``: nothing to check. A folder: it must be absolute and hold ``<arch>.pth`` for every
    architecture of :func:`trained_archs`, matching ``MANIFEST.json`` where it lists them.
    ``imagenet``: every architecture needs ImageNet weights in timm, either already cached or
    downloadable (the hub answers within :data:`REACH_TIMEOUT_S`). When everything is cached but
    the hub does not answer, ``HF_HUB_OFFLINE=1`` is set in this process's environment, so the
    notebook kernels it starts read the cache instead of retrying the hub.

    Raises
    ------
    ConfigError
        One line naming what is missing and the alternative.
    """
    if profile.pretrained in ("", "none"):
        return
    archs = trained_archs(profile)
    if profile.pretrained == "imagenet":
        _check_imagenet(archs)
    else:
        _check_folder(profile.pretrained, archs)


def _check_folder(folder: str, archs: Sequence[str]) -> None:
    path = Path(folder)
    if not path.is_absolute():
        raise ConfigError(f"pretrained={folder!r} must be 'none', 'imagenet' or an absolute folder path "
                          f"(the notebooks run in notebooks/): e.g. -p pretrained=$PWD/{folder}")
    if not path.is_dir():
        raise ConfigError(f"pretrained={folder!r} is not a folder (nor 'none' or 'imagenet'); "
                          + _ALTERNATIVE.format(archs=f" --archs {','.join(archs)}"))
    missing = [arch for arch in archs if not (path / f"{arch}.pth").is_file()]
    if missing:
        names = ", ".join(f"{arch}.pth" for arch in missing)
        raise ConfigError(f"pretrained folder {path} lacks {names}; "
                          + _ALTERNATIVE.format(archs=f" --archs {','.join(missing)}"))
    for arch in archs:
        verify_file(path / f"{arch}.pth")


def _check_imagenet(archs: Sequence[str]) -> None:
    from paperkit.models import has_imagenet_weights

    unknown = [arch for arch in archs if not _is_timm_model(arch)]
    if unknown:
        raise ConfigError(f"unknown timm architecture(s) {', '.join(unknown)}; see paperkit.models.MODEL_INFO")
    without = [arch for arch in archs if not has_imagenet_weights(arch)]
    if without:
        raise ConfigError(f"pretrained=imagenet: timm has no ImageNet weights for {', '.join(without)} (paperkit's "
                          f"small CPU architectures); pass -p pretrained=none to train from scratch, or a folder "
                          f"holding {without[0]}.pth")
    uncached = [arch for arch in archs if cached_imagenet_file(arch) is None]
    hosts = sorted({_download_host(arch) for arch in (uncached or archs)})
    if _offline_mode():
        down = hosts
    else:
        down = [host for host, ok in zip(hosts, _reachable_all(hosts)) if not ok]
    if not uncached:
        if down:  # the kernels inherit this: timm then reads the cache without waiting for the hub
            os.environ["HF_HUB_OFFLINE"] = "1"
        return
    if down:
        why = ("HF_HUB_OFFLINE is set" if _offline_mode()
               else f"{', '.join(down)} did not answer within {REACH_TIMEOUT_S:g} s")
        raise ConfigError(
            f"pretrained=imagenet needs timm's ImageNet weights for {', '.join(uncached)}, which are not cached here "
            f"({', '.join(_cache_dirs(uncached))}) and cannot be downloaded ({why}); "
            + _ALTERNATIVE.format(archs=f" --archs {','.join(uncached)}")
        )


def _cache_dirs(archs: Sequence[str]) -> list[str]:
    """The caches timm would read ``archs`` from: the Hugging Face hub's, and torch hub's for URL-hosted weights."""
    import torch

    dirs = [str(hub_cache_dir())]
    if any(_download_host(arch) != _hub_endpoint() for arch in archs):
        dirs.append(str(Path(torch.hub.get_dir()) / "checkpoints"))
    return dirs


def _is_timm_model(arch: str) -> bool:
    import timm

    import paperkit.models  # noqa: F401  (registers the small CPU architectures with timm)

    return timm.is_model(arch)


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now.

    ``huggingface_hub.constants`` fixes it when first imported; the notebook kernels import it
    afresh with this process's environment, so the environment is what they will use.
    """
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.path.expandvars(os.environ[name])).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")
    return Path(os.path.expandvars(home)).expanduser() / "hub"


def cached_imagenet_file(arch: str) -> Path | None:
    """The cached file timm would load ``arch``'s ImageNet weights from, or ``None`` if not cached."""
    import timm
    import torch

    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        return None
    if cfg.file:
        return Path(cfg.file) if Path(cfg.file).is_file() else None
    if cfg.hf_hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = cfg.hf_hub_id.partition("@")
        # timm prefers the safetensors file and falls back to the pickled one
        for filename in (cfg.hf_hub_filename,) if cfg.hf_hub_filename else ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(repo, filename, cache_dir=hub_cache_dir(), revision=revision or None)
            if isinstance(found, str):
                return Path(found)
        return None
    if cfg.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlsplit(cfg.url).path).name
        return path if path.is_file() else None
    return None


def _download_host(arch: str) -> str:
    """Base URL timm downloads ``arch``'s weights from: the Hugging Face endpoint, else the file's URL host."""
    import timm

    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is not None and not cfg.hf_hub_id and cfg.url:
        parts = urlsplit(cfg.url)
        return f"{parts.scheme}://{parts.netloc}"
    return _hub_endpoint()


def _hub_endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) as set now or when huggingface_hub was imported."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().lower() in ("1", "true", "yes", "on") or bool(constants.HF_HUB_OFFLINE)


def reachable(url: str, timeout: float | None = None) -> bool:
    """Whether ``url`` answers an HTTP HEAD (any status) within ``timeout`` s (default :data:`REACH_TIMEOUT_S`)."""
    return _reachable_all([url], timeout)[0]


def _reachable_all(urls: Sequence[str], timeout: float | None = None) -> list[bool]:
    """:func:`reachable` of each URL, probed concurrently so the whole check takes at most ``timeout``.

    The probes run in daemon threads because name resolution ignores socket timeouts and can hang
    far longer on a machine without network; proxies from the environment are honoured.
    """
    timeout = REACH_TIMEOUT_S if timeout is None else timeout
    answered: dict[str, bool] = {}

    def probe(url: str) -> None:
        try:
            urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
            answered[url] = True
        except urllib.error.HTTPError:
            answered[url] = True  # an error status still proves the host answers
        except (OSError, ValueError):
            answered[url] = False

    threads = [threading.Thread(target=probe, args=(url,), name=f"reach {url}", daemon=True) for url in urls]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [answered.get(url, False) for url in urls]



def save_weights(archs: Iterable[str], out_dir: str | os.PathLike) -> Path:
    """Write timm's ImageNet state dict of each arch to ``out_dir/<arch>.pth``, and ``MANIFEST.json``.

    Files are written atomically, and the manifest after each one, so an interrupted run keeps
    what it finished; a file the manifest already vouches for is not downloaded again. The folder
    is what ``-p pretrained=/path/to/out_dir`` takes on a machine without internet.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ConfigError
        Before any download, if an arch has no ImageNet weights or the hub cannot be reached.
    """
    import timm
    import torch

    from paperkit.models import imagenet_source, imagenet_state_dict

    archs = tuple(dict.fromkeys(archs))
    out = Path(out_dir)
    manifest = read_manifest(out)
    todo = [arch for arch in archs if not _is_saved(out, arch, manifest)]
    if todo:
        _check_imagenet(todo)
    for arch in archs:
        name = f"{arch}.pth"
        if arch not in todo:
            log.info("%s is current (sha256 matches %s)", out / name, MANIFEST)
            continue
        state = imagenet_state_dict(arch)
        with atomic_path(out / name) as tmp:
            torch.save(state, tmp)
        manifest["files"][name] = {"arch": arch, "sha256": file_sha256(out / name), "timm": timm.__version__,
                                   "bytes": (out / name).stat().st_size, "source": imagenet_source(arch)}
        write_json(out / MANIFEST, manifest)
        log.info("wrote %s", out / name)
    return out


def _is_saved(out: Path, arch: str, manifest: dict) -> bool:
    entry = manifest["files"].get(f"{arch}.pth")
    path = out / f"{arch}.pth"
    return bool(entry) and path.is_file() and file_sha256(path) == entry.get("sha256")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for <arch>.pth and MANIFEST.json")
    parser.add_argument("--profile", default="nih",
                        help="save the references and target of this profile (default nih: the paper's six references, "
                             "DenseNet-121, the target, among them)")
    parser.add_argument("--archs", default="", metavar="A,B", help="comma-separated timm names instead of a profile's")


def main(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        archs = [a for a in args.archs.replace(" ", "").split(",") if a]
        archs = archs or list(trained_archs(get_profile(args.profile)))
        out = save_weights(archs, Path(args.out).expanduser().resolve())
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(archs)} weight file(s) in {out}; on the training machine pass -p pretrained={out}")
    return 0
