"""Every source written to .beton by `scale-lth data write` and read back through the
project's loaders: pixels and labels equal the source (exactly for raw data), counts add up."""

import json

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from scale_lth.cli import main
from scale_lth.data import DataInfo, LoaderOptions, eval_batches, sources, train_batches


def read_back(folder, split, pipeline="plain", batch_size=64):
    """All images (uint8, N x H x W x C or N x H x W) and labels of a split, in stored order."""
    info = DataInfo.load(folder)
    batches = eval_batches(folder, split, batch_size, options=LoaderOptions(pipeline=pipeline))
    mean = torch.tensor(info.mean).view(1, -1, 1, 1)
    std = torch.tensor(info.std).view(1, -1, 1, 1)
    images, labels = [], []
    for x, y in batches:
        images.append(torch.round(x * std + mean).clamp(0, 255).to(torch.uint8))
        labels.append(y)
    pixels = torch.cat(images).permute(0, 2, 3, 1).numpy()
    if info.layout == "gray":
        pixels = pixels[..., 0]
    return pixels, torch.cat(labels).numpy()


def write(*arguments):
    assert main(["data", "write", *map(str, arguments)]) == 0


def written(out, source, root, splits) -> DataInfo:
    """`data write --source SOURCE --root ROOT --out OUT`, checking the split sizes."""
    write("--source", source, "--root", root, "--out", out)
    info = DataInfo.load(out)
    assert info.splits == splits
    return info


def assert_split_is(out, split, images, labels):
    pixels, read_labels = read_back(out, split)
    assert np.array_equal(pixels, images) and np.array_equal(read_labels, labels)


def test_digits_round_trip_is_exact_and_complete(tmp_path):
    out = tmp_path / "digits"
    write("--source", "digits", "--out", out)
    info = DataInfo.load(out)
    assert info.splits == {"train": 1257, "val": 180, "test": 360}
    assert sum(info.splits.values()) == 1797
    assert info.shape == [1, 8, 8] and info.num_classes == 10
    bunch = load_digits()
    source_pairs = {
        (bunch.images[i].astype(np.uint8).tobytes(), int(bunch.target[i])) for i in range(1797)
    }
    seen = []
    for split in info.splits:
        pixels, labels = read_back(out, split)
        expected = sources.digits()[split]
        assert len(labels) == len(expected) == info.splits[split]
        for i in range(len(labels)):
            image, label = expected[i]
            assert np.array_equal(pixels[i], image) and labels[i] == label
        seen += [(pixels[i].tobytes(), int(labels[i])) for i in range(len(labels))]
    assert len(seen) == 1797
    assert set(seen) <= source_pairs  # every stored pair is a real digit with its label


def test_mnist_idx_round_trip_holds_out_a_seeded_validation_split(tmp_path, mnist_root):
    root, arrays = mnist_root
    out = tmp_path / "mnist_beton"
    written(out, "mnist", root, {"train": 540, "val": 60, "test": 100})
    assert_split_is(out, "test", arrays["test_images"], arrays["test_labels"])
    train_pixels, train_labels = read_back(out, "train")
    val_pixels, val_labels = read_back(out, "val")
    together = np.concatenate([train_pixels, val_pixels])
    order = np.lexsort(together.reshape(len(together), -1).T)
    source_order = np.lexsort(arrays["train_images"].reshape(600, -1).T)
    assert np.array_equal(together[order], arrays["train_images"][source_order])
    assert np.array_equal(
        np.concatenate([train_labels, val_labels])[order], arrays["train_labels"][source_order]
    )
    # The held-out split is the same every time it is written.
    write("--source", "mnist", "--root", root, "--out", tmp_path / "again")
    assert np.array_equal(read_back(tmp_path / "again", "val")[0], val_pixels)


def test_cifar10_pickles_round_trip_exactly(tmp_path, cifar_root):
    root, arrays = cifar_root
    out = tmp_path / "cifar_beton"
    info = written(out, "cifar10", root, {"train": 180, "val": 20, "test": 30})
    assert info.shape == [3, 32, 32] and info.augmentation == "pad_crop_flip"
    assert_split_is(out, "test", arrays["test_images"], arrays["test_labels"])
    train = sources.cifar10(root)["train"]
    pixels, labels = read_back(out, "train")
    assert all(np.array_equal(pixels[i], train[i][0]) for i in range(len(train)))
    assert [int(y) for y in labels] == [train[i][1] for i in range(len(train))]


def test_imagefolder_raw_is_exact_and_jpeg_is_close(tmp_path, imagefolder_root):
    root, decoded = imagefolder_root
    raw = tmp_path / "raw"
    write("--source", "imagefolder", "--root", root, "--out", raw, "--write-mode", "raw",
          "--holdout", "0")  # fmt: skip
    info = DataInfo.load(raw)
    assert info.splits == {"train": 12, "val": 6} and info.num_classes == 3
    assert info.shape == [3, 40, 48] and info.augmentation == "resized_crop_flip"
    for split in ("train", "val"):
        pixels, labels = read_back(raw, split)
        assert all(np.array_equal(p, d) for p, (d, _) in zip(pixels, decoded[split], strict=True))
        assert [int(y) for y in labels] == [label for _, label in decoded[split]]
    jpeg = tmp_path / "jpeg"
    write(
        "--source", "imagefolder", "--root", root, "--out", jpeg,
        "--write-mode", "jpg", "--jpeg-quality", "95", "--holdout", "0",
    )  # fmt: skip
    pixels, labels = read_back(jpeg, "val")
    errors = [
        np.abs(p.astype(int) - d.astype(int)).mean()
        for p, (d, _) in zip(pixels, decoded["val"], strict=True)
    ]
    assert max(errors) < 3.0  # a second JPEG encoding at quality 95
    assert [int(y) for y in labels] == [label for _, label in decoded["val"]]


def test_imagefolder_holds_training_images_out_as_val_and_its_val_becomes_test(
    tmp_path, imagefolder_root
):
    root, decoded = imagefolder_root
    for holdout, out in ((None, tmp_path / "default"), (4, tmp_path / "four")):
        options = [] if holdout is None else ["--holdout", holdout]
        write("--source", "imagefolder", "--root", root, "--out", out, "--write-mode", "raw",
              *options)  # fmt: skip
        held = 1 if holdout is None else holdout  # 12 images: 10,000 / 1,281,167 of them, >= 1
        assert DataInfo.load(out).splits == {"train": 12 - held, "val": held, "test": 6}
        pixels, labels = read_back(out, "test")  # the folder's val/, whole and in order
        assert all(np.array_equal(p, d) for p, (d, _) in zip(pixels, decoded["val"], strict=True))
        assert [int(y) for y in labels] == [label for _, label in decoded["val"]]
        parts = [read_back(out, split) for split in ("train", "val")]
        together = [
            (p.tobytes(), int(y))
            for pixels, labels in parts
            for p, y in zip(pixels, labels, strict=True)
        ]
        # train and val split the folder's train/ exactly: every image in one of them, once
        assert sorted(together) == sorted((d.tobytes(), y) for d, y in decoded["train"])
    again = tmp_path / "again"
    write("--source", "imagefolder", "--root", root, "--out", again, "--write-mode", "raw",
          "--holdout", "4")  # fmt: skip
    assert np.array_equal(read_back(again, "val")[0], read_back(tmp_path / "four", "val")[0])


def test_imagenet_pipelines_crop_to_the_requested_resolution(tmp_path, imagefolder_root):
    root, _ = imagefolder_root
    out = tmp_path / "imagenet_beton"
    write("--source", "imagefolder", "--root", root, "--out", out, "--max-resolution", "44")
    options = LoaderOptions(resolution=24)
    images, labels = next(iter(train_batches(out, 4, seed=0, options=options)))
    assert images.shape == (4, 3, 24, 24) and images.dtype == torch.float32
    images, _ = next(iter(eval_batches(out, "test", 6, options=options)))
    assert images.shape == (6, 3, 24, 24)


def test_synthetic_data_of_any_size_round_trips(tmp_path):
    out = tmp_path / "synthetic"
    write(
        "--source", "synthetic", "--num-classes", "5", "--image-size", "20",
        "--sizes", "60,20,10", "--seed", "4", "--out", out,
    )  # fmt: skip
    info = DataInfo.load(out)
    assert info.splits == {"train": 60, "val": 20, "test": 10} and info.shape == [3, 20, 20]
    expected = sources.synthetic(5, 20, (60, 20, 10), seed=4)
    for split in info.splits:
        pixels, labels = read_back(out, split)
        for i in range(info.splits[split]):
            image, label = expected[split][i]
            assert np.array_equal(pixels[i], image) and labels[i] == label


def test_synthetic_classes_are_learnable():
    """Images of a class are closer to their own class's mean than to others' (mostly)."""
    splits = sources.synthetic(4, 16, (200, 10, 10), seed=0)
    images = np.stack([splits["train"][i][0] for i in range(200)]).astype(float)
    labels = np.array([splits["train"][i][1] for i in range(200)])
    means = np.stack([images[labels == c].mean(0) for c in range(4)])
    nearest = np.argmin(((images[:, None] - means[None]) ** 2).sum(axis=(2, 3, 4)), axis=1)
    assert (nearest == labels).mean() > 0.95


def test_writing_over_existing_data_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "digits"
    write("--source", "digits", "--out", out)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main(["data", "write", "--source", "digits", "--out", str(out)]) == 2
    message = capsys.readouterr().err.strip()
    assert "already holds" in message and "--overwrite" in message and "\n" not in message
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    write("--source", "digits", "--out", out, "--overwrite")
    assert json.loads((out / "info.json").read_text())["splits"]["test"] == 360


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (["--source", "mnist"], "needs --root"),
        (["--source", "cifar10", "--root", "{tmp}"], "data_batch_1"),
        (["--source", "imagefolder", "--root", "{tmp}"], "no train/ folder"),
        (["--source", "synthetic", "--sizes", "10,x,3"], "--sizes"),
    ],
)
def test_bad_sources_fail_with_one_line(tmp_path, capsys, arguments, fragment):
    arguments = [a.replace("{tmp}", str(tmp_path)) for a in arguments]
    assert main(["data", "write", *arguments, "--out", str(tmp_path / "out")]) == 2
    message = capsys.readouterr().err.strip()
    assert fragment in message and "\n" not in message
    assert not (tmp_path / "out").exists()
