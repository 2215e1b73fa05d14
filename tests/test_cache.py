"""Image cache: decode once, uint8 memmap, order kept, resumable, atomic, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import paperkit.data.cache as cache_mod
from paperkit.data.cache import ImageCache, build_cache, decode_resize
from paperkit.data.datasets import DataError
from paperkit.data.nih import load_nih


def _images(folder, n=7, side=40):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:03d}.png"
        Image.fromarray(np.full((side, side), 10 * i, np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize(
    "mode, pixels, expected",
    [
        ("L", np.full((30, 30), 77, np.uint8), 77),
        ("RGB", np.dstack([np.full((30, 30), 200, np.uint8), np.zeros((30, 30, 2), np.uint8)]), 200),
        (
            "RGBA",
            np.dstack(
                [
                    np.full((30, 30, 1), 90, np.uint8),
                    np.zeros((30, 30, 2), np.uint8),
                    np.full((30, 30, 1), 255, np.uint8),
                ]
            ),
            90,
        ),
    ],
)
def test_first_channel_of_8bit(tmp_path, mode, pixels, expected):
    path = tmp_path / f"x.{mode}.png"
    Image.fromarray(pixels, mode).save(path)
    out = decode_resize(path, 12)
    assert out.shape == (12, 12) and out.dtype == np.uint8 and (out == expected).all()


def test_16bit_is_scaled_to_8bit(tmp_path):
    path = tmp_path / "x16.png"
    Image.fromarray(np.tile(np.linspace(0, 4095, 32).astype(np.uint16), (32, 1))).save(path)
    out = decode_resize(path, 32)
    assert out.min() == 0 and out.max() == 255  # 12-bit data spread over the 8-bit range


def test_build_load_keeps_requested_order(tmp_path):
    paths = _images(tmp_path / "img")
    cache = build_cache(paths, tmp_path / "cache", size=16, workers=1, chunk_size=3, progress=False)
    assert len(cache) == 7 and cache.size == 16 and cache.paths == [str(p) for p in paths]
    batch = cache.load([5, 0, 5, 2])
    assert batch.dtype == torch.uint8 and batch.shape == (4, 16, 16)
    assert batch[:, 0, 0].tolist() == [50, 0, 50, 20]
    assert (ImageCache.open(tmp_path / "cache").load(np.array([6]))[0] == 60).all()
    with pytest.raises(IndexError, match="index 7"):
        cache.load([7])


def test_parallel_build_matches_serial(tmp_path):
    paths = _images(tmp_path / "img", n=9)
    serial = build_cache(paths, tmp_path / "a", size=8, workers=1, chunk_size=2, progress=False)
    parallel = build_cache(paths, tmp_path / "b", size=8, workers=2, chunk_size=2, progress=False)
    assert torch.equal(serial.load(range(9)), parallel.load(range(9)))


def test_killed_build_resumes_from_finished_chunks(tmp_path, monkeypatch):
    paths = _images(tmp_path / "img", n=8)
    calls = []
    real = cache_mod.decode_resize

    def dies_after_five(path, size):
        if len(calls) == 5:
            raise KeyboardInterrupt  # the process is killed mid-chunk
        calls.append(path)
        return real(path, size)

    monkeypatch.setattr(cache_mod, "decode_resize", dies_after_five)
    with pytest.raises(KeyboardInterrupt):
        build_cache(paths, tmp_path / "cache", size=8, workers=1, chunk_size=2, progress=False)
    with pytest.raises(DataError, match="manifest.json missing"):
        ImageCache.open(tmp_path / "cache")  # a half-built cache is never read
    calls.clear()
    monkeypatch.setattr(cache_mod, "decode_resize", lambda path, size: calls.append(path) or real(path, size))
    cache = build_cache(paths, tmp_path / "cache", size=8, workers=1, chunk_size=2, progress=False)
    assert len(calls) == 4  # chunks 0 and 1 were kept; 2 and 3 redone
    assert cache.load(range(8))[:, 0, 0].tolist() == [0, 10, 20, 30, 40, 50, 60, 70]
    calls.clear()
    build_cache(paths, tmp_path / "cache", size=8, workers=1, chunk_size=2, progress=False)
    assert calls == []  # finished and current: nothing decoded
    assert build_cache(paths, tmp_path / "cache", size=4, workers=1, progress=False).size == 4  # new size: rebuilt


@pytest.mark.parametrize("damage", ["truncated", "not-an-image", "absent"])
def test_bad_image_names_the_file(tmp_path, damage):
    paths = _images(tmp_path / "img", n=3, side=64)
    bad = paths[1]
    if damage == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(bad)
        bad.write_bytes(bad.read_bytes()[:300])
    elif damage == "not-an-image":
        bad.write_text("hello")
    else:
        bad.unlink()
    with pytest.raises(DataError, match=f"image {bad}"):
        build_cache(paths, tmp_path / "cache", size=8, workers=1, progress=False)


def test_real_nih_sample_through_loader_and_cache(shared_dir, tmp_path):
    root = shared_dir / "data" / "nih-sample-256"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    ds = load_nih(root, split="patient70_10_20")
    assert len(ds) == 621 and len(ds.missing) == 0
    assert int(ds.labels[:, ds.classes.index("Infiltration")].sum()) == 123
    cache = build_cache(ds.paths, tmp_path / "cache", size=128, workers=1, chunk_size=128, progress=False)
    assert len(cache) == 621
    first = np.asarray(Image.open(ds.paths[0]).convert("L").resize((128, 128), Image.BILINEAR))
    assert np.array_equal(cache.load([0])[0].numpy(), first)
    assert float(cache.load(range(0, 621, 50)).float().std()) > 20  # real radiographs, not blanks
