"""Dataset readers on replicas of the releases' on-disk formats (tests/replicas.py), and their layout errors."""
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from acda.data import DatasetLayoutError
from acda.data.cifar import cifar, load_cifar_arrays
from acda.data.imagenet import ImageFileError, eval_transform, imagenet
from acda.data.proxy import PROXY_IMAGES, texture_patches, texture_proxy
from tests.replicas import cifar_batch


@pytest.fixture
def cifar10_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [cifar_batch(folder / f"data_batch_{i}", 3, "labels", 10, i) for i in range(1, 6)]
    batches.append(cifar_batch(folder / "test_batch", 4, "labels", 10, 9))
    return tmp_path, batches


def test_cifar10_reads_pickle_batches_in_order(cifar10_root):
    root, batches = cifar10_root
    images, labels = load_cifar_arrays(root, "cifar10", train=True)
    assert images.shape == (15, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.tolist() == sum((b[b"labels"] for b in batches[:5]), [])
    # row-major 3072 = 3 channel planes of 32×32 (R then G then B)
    assert torch.equal(images[3], torch.from_numpy(batches[1][b"data"][0].reshape(3, 32, 32)))
    test = cifar(root, "cifar10", train=False)
    x, y = test[2]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == batches[5][b"labels"][2]
    # the batch folder itself is accepted as root
    assert load_cifar_arrays(root / "cifar-10-batches-py", "cifar10", train=False)[0].shape[0] == 4


def test_cifar100_uses_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train = cifar_batch(folder / "train", 5, "fine_labels", 100, 0)
    cifar_batch(folder / "test", 2, "fine_labels", 100, 1)
    ds = cifar(tmp_path, "cifar100", train=True)
    assert len(ds) == 5 and ds.labels.tolist() == train[b"fine_labels"] and len(ds.classes) == 100


def test_cifar_train_augmentation_is_random_and_eval_is_not(cifar10_root):
    root, _ = cifar10_root
    train = cifar(root, "cifar10", train=True)
    torch.manual_seed(0)
    a = torch.stack([train[0][0] for _ in range(8)])
    assert not all(torch.equal(a[0], a[i]) for i in range(1, 8))
    test = cifar(root, "cifar10", train=False)
    assert torch.equal(test[0][0], test[0][0])


@pytest.mark.parametrize("break_it,match", [
    (lambda root: None, "missing directory"),
    (lambda root: (root / "cifar-10-batches-py").mkdir(), "missing file"),
])
def test_cifar_missing_root_names_the_layout(tmp_path, break_it, match):
    break_it(tmp_path)
    with pytest.raises(DatasetLayoutError, match=match) as err:
        load_cifar_arrays(tmp_path, "cifar10")
    assert "data_batch_1" in str(err.value) and "Expected layout" in str(err.value)
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        load_cifar_arrays(tmp_path / "nowhere", "cifar10")


def test_cifar_malformed_batches(cifar10_root):
    root, _ = cifar10_root
    folder = root / "cifar-10-batches-py"
    (folder / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DatasetLayoutError, match="not a python pickle"):
        load_cifar_arrays(root, "cifar10", train=False)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8)}, f)
    with pytest.raises(DatasetLayoutError, match="lacks key 'labels'"):
        load_cifar_arrays(root, "cifar10", train=False)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(DatasetLayoutError, match="3072"):
        load_cifar_arrays(root, "cifar10", train=False)
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_cifar_arrays(root, "cifar1000")


def test_imagenet_folder_and_transforms(tmp_path):
    for split in ("train", "val"):
        for wnid in ("n01440764", "n01443537"):
            d = tmp_path / split / wnid
            d.mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((300, 400, 3), 40 * i, np.uint8)).save(d / f"{wnid}_{i}.JPEG")
    train = imagenet(tmp_path, "train")
    val = imagenet(tmp_path, "val")
    assert train.classes == val.classes == ["n01440764", "n01443537"] and len(val) == 4
    assert train[0][0].shape == val[3][0].shape == (3, 224, 224)
    assert val[3][1] == 1
    assert eval_transform()(Image.new("RGB", (500, 300))).shape == (3, 224, 224)


def test_imagenet_layout_errors(tmp_path):
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        imagenet(tmp_path / "none", "val")
    with pytest.raises(DatasetLayoutError, match="missing directory") as err:
        imagenet(tmp_path, "val")
    assert "val/<wnid>/*.JPEG" in str(err.value)
    (tmp_path / "val").mkdir()
    with pytest.raises(DatasetLayoutError, match="no class folders"):
        imagenet(tmp_path, "val")
    (tmp_path / "val" / "n01440764").mkdir()
    with pytest.raises(DatasetLayoutError, match="n01440764|Found no valid file"):
        imagenet(tmp_path, "val")
    with pytest.raises(ValueError, match="split"):
        imagenet(tmp_path, "test")


def test_texture_proxy_is_real_disjoint_and_deterministic():
    x, y = texture_patches(5, train=True)
    assert x.shape == (50, 3, 32, 32) and x.dtype == torch.uint8 and y.bincount().tolist() == [5] * 10
    assert torch.equal(x, texture_patches(5, train=True)[0])
    assert not torch.equal(x, texture_patches(5, train=True, seed=1)[0])
    assert (x.float().std(dim=(1, 2, 3)) > 1).all()  # real image content, not constant patches
    assert torch.equal(x[:, 0], x[:, 2])  # grey replicated to RGB
    train, test = texture_proxy(3, 2)
    assert len(train) == 30 and len(test) == 20 and train.classes == list(PROXY_IMAGES)
    assert train[0][0].shape == (3, 32, 32)
    with pytest.raises(ValueError, match="per_class"):
        texture_patches(0, train=True)


def _jpeg_tree(root, split, classes, per_class=1, size=(40, 48)):
    for c, wnid in enumerate(classes):
        d = root / split / wnid
        d.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((*size, 3), 30 * c + i, np.uint8)).save(d / f"{wnid}_{i}.JPEG")


def test_imagenet_val_labels_follow_the_train_class_index(tmp_path):
    # Fault: val lacks the middle class. Built independently, val's third class would get label 1.
    _jpeg_tree(tmp_path, "train", ["n01", "n02", "n03"])
    _jpeg_tree(tmp_path, "val", ["n01", "n03"])
    train = imagenet(tmp_path, "train")
    with pytest.warns(UserWarning, match=r"'val' has no images of 1 of 'train'.*n02"):
        val = imagenet(tmp_path, "val")
    assert val.classes == train.classes == ["n01", "n02", "n03"]
    assert val.class_to_idx == train.class_to_idx
    assert sorted((Path(p).parent.name, t) for p, t in val.samples) == [("n01", 0), ("n03", 2)]
    # an explicit class index (e.g. a checkpoint's) wins; without a train split, val indexes its own folders
    assert imagenet(tmp_path, "val", classes=["n03", "n01"]).samples[0][1] == 1


def test_imagenet_split_with_a_class_train_lacks_is_an_error(tmp_path):
    _jpeg_tree(tmp_path, "train", ["n01", "n02"])
    _jpeg_tree(tmp_path, "val", ["n01", "n02", "n09"])
    with pytest.raises(DatasetLayoutError, match=r"split 'val' has class folders that 'train' lacks: n09"):
        imagenet(tmp_path, "val")


def test_imagenet_without_train_split_indexes_its_own_classes(tmp_path):
    _jpeg_tree(tmp_path, "val", ["n01", "n03"])
    assert imagenet(tmp_path, "val").class_to_idx == {"n01": 0, "n03": 1}


def test_truncated_jpeg_error_names_the_file(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "train" / "n01"
    d.mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / "good.JPEG")
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / "bad.JPEG", quality=95)
    data = (d / "bad.JPEG").read_bytes()
    (d / "bad.JPEG").write_bytes(data[: len(data) // 2])
    ds = imagenet(tmp_path, "train")
    bad = [i for i, (p, _) in enumerate(ds.samples) if p.endswith("bad.JPEG")][0]
    with pytest.raises(ImageFileError, match=r"bad\.JPEG.*truncated") as err:
        ds[bad]
    assert isinstance(err.value, OSError) and err.value.path.endswith("bad.JPEG")
    assert ds[1 - bad][0].shape == (3, 224, 224)
    # through a DataLoader worker process the message still names the file
    with pytest.raises(Exception, match=r"bad\.JPEG"):
        list(torch.utils.data.DataLoader(ds, batch_size=2, num_workers=1))


@pytest.mark.parametrize("val", ["folders", "devkit", "kaggle"])
def test_imagenet_every_validation_layout(tmp_path, val):
    """Val sorted into class folders, flat with the devkit's meta.mat + ground truth, or Kaggle's tree with
    LOC_val_solution.csv: the same labels (train's class index) for the same images."""
    from acda.data.imagenet import imagenet
    from tests.replicas import IMAGENET_WNIDS, imagenet_release

    root = imagenet_release(tmp_path / val, val)
    train, ds = imagenet(root, "train"), imagenet(root, "val")
    assert train.classes == list(IMAGENET_WNIDS) and len(train) == 6
    assert sorted((Path(p).name, t) for p, t in ds.samples) == [
        (f"ILSVRC2012_val_{k:08d}.JPEG", (k - 1) % 3) for k in range(1, 7)]
    x, y = ds[0]
    assert x.shape == (3, 224, 224) and y == ds.samples[0][1]


def test_imagenet_flat_val_without_labels_names_both_label_files(tmp_path):
    from acda.data import DatasetLayoutError
    from acda.data.imagenet import imagenet
    from tests.replicas import imagenet_release

    root = imagenet_release(tmp_path / "kaggle", "kaggle")
    (root / "LOC_val_solution.csv").write_text("ImageId,PredictionString\nILSVRC2012_val_00000001,n01440764 1 2 3 4\n")
    with pytest.raises(DatasetLayoutError, match="5 images .* have no label, e.g. ILSVRC2012_val_00000002.JPEG"):
        imagenet(root, "val")
    (root / "LOC_val_solution.csv").unlink()
    with pytest.raises(DatasetLayoutError, match="ILSVRC2012_devkit_t12.*LOC_val_solution.csv"):
        imagenet(root, "val")
