"""MNIST files: IDX parsing, fetching (local folder, gzipped or not, and mirrors), checksums, and
bad data: each error names the file, and nothing is written to the destination unless all four
files are good."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import re
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from lth.data import FILE_NAMES, MNIST_FILES, fetch_mnist, load_split, parse_idx, read_mnist_arrays, write_idx
from lth.errors import LTHError

from conftest import SHARED_MNIST, make_small_mnist


def quiet(*_):
    pass


def fetch_fails(dest: Path, match: str, **kwargs) -> str:
    """fetch_mnist must raise one line matching ``match`` and write nothing into ``dest``."""
    before = sorted(p.name for p in dest.iterdir()) if dest.exists() else []
    with pytest.raises(LTHError) as info:
        fetch_mnist(dest, log=quiet, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(match, message), message
    after = sorted(p.name for p in dest.iterdir()) if dest.exists() else []
    assert after == before, f"fetch left {set(after) - set(before)} in {dest}"
    return message


# --- IDX parsing ----------------------------------------------------------------------------


@pytest.mark.bitwise
def test_idx_round_trip_and_header(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    write_idx(tmp_path / "i", images)
    write_idx(tmp_path / "l", labels)
    raw_i, raw_l = (tmp_path / "i").read_bytes(), (tmp_path / "l").read_bytes()
    assert raw_i[:4] == b"\x00\x00\x08\x03" and struct.unpack(">3I", raw_i[4:16]) == (3, 28, 28)
    assert raw_l[:8] == b"\x00\x00\x08\x01\x00\x00\x00\x03"
    assert len(raw_i) == 16 + 3 * 784
    parsed_i, parsed_l = parse_idx(raw_i), parse_idx(raw_l)
    assert parsed_i.dtype == np.uint8 and parsed_i.shape == (3, 28, 28)
    assert np.array_equal(parsed_i, images) and np.array_equal(parsed_l, labels)


def test_parse_reads_the_small_data_set(small_mnist):
    arrays = read_mnist_arrays(small_mnist)
    assert arrays["train-images-idx3-ubyte"].shape == (600, 28, 28)
    assert arrays["t10k-images-idx3-ubyte"].shape == (200, 28, 28)
    assert arrays["train-labels-idx1-ubyte"].shape == (600,)
    assert set(np.unique(arrays["train-labels-idx1-ubyte"])) == set(range(10))


@pytest.mark.parametrize("data, match", [
    (b"\x00\x00", "too short for an IDX file"),
    (b"\x00\x00\x0d\x03" + struct.pack(">3I", 1, 28, 28) + bytes(784 * 4), "bad IDX magic 0x00000d03"),  # float
    (b"\x00\x00\x08\x02" + struct.pack(">2I", 2, 2) + bytes(4), "bad IDX magic 0x00000802"),  # 2-d
    (b"\x1f\x8b\x08\x00" + bytes(40), "bad IDX magic 0x1f8b0800"),  # still gzipped
    (b"\x00\x00\x08\x03" + struct.pack(">2I", 1, 28), "truncated IDX header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + bytes(3), r"shape \(5,\) \(13 bytes\) but the file has 11 bytes"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + bytes(3), "truncated or padded"),
])
def test_parse_refuses_what_is_not_ubyte_idx(data, match):
    with pytest.raises(LTHError, match=match) as info:
        parse_idx(data, "some/file-idx")
    assert str(info.value).startswith("some/file-idx: ")


# --- the in-memory split --------------------------------------------------------------------


@pytest.mark.bitwise
def test_load_split_holds_out_a_fixed_validation_set(small_mnist):
    a = load_split(small_mnist, val_size=100, split_seed=0)
    b = load_split(small_mnist, val_size=100, split_seed=0)
    c = load_split(small_mnist, val_size=100, split_seed=1)
    assert a.train_x.shape == (500, 784) and a.val_x.shape == (100, 784) and a.test_x.shape == (200, 784)
    assert a.train_x.dtype == torch.float32 and a.train_y.dtype == torch.int64
    assert float(a.train_x.min()) >= 0.0 and float(a.train_x.max()) <= 1.0
    assert torch.equal(a.val_x, b.val_x) and torch.equal(a.train_y, b.train_y)
    assert not torch.equal(a.val_x, c.val_x)
    # the validation images are training images, disjoint from the ones trained on
    raw = torch.from_numpy(read_mnist_arrays(small_mnist)["train-images-idx3-ubyte"].reshape(600, -1).astype(np.float32) / 255)
    rows = {tuple(r.tolist()) for r in raw}
    train_rows = {tuple(r.tolist()) for r in a.train_x}
    val_rows = {tuple(r.tolist()) for r in a.val_x}
    assert val_rows <= rows and train_rows <= rows and not train_rows & val_rows


@pytest.mark.parametrize("val_size", [0, 600, 1000])
def test_load_split_refuses_impossible_val_size(small_mnist, val_size):
    with pytest.raises(LTHError, match=f"val_size={val_size} must be between 1 and 599"):
        load_split(small_mnist, val_size=val_size, split_seed=0)


# --- fetching from a local folder -------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.bitwise
def test_fetch_from_a_local_folder(tmp_path, gz):
    src = make_small_mnist(tmp_path / "src", gz=gz)
    plain = make_small_mnist(tmp_path / "plain")  # the same bytes, uncompressed
    log = []
    sums = fetch_mnist(tmp_path / "dest", source=src, verify_checksums=False, log=log.append)
    assert sorted(p.name for p in (tmp_path / "dest").iterdir()) == sorted(FILE_NAMES)
    for name in FILE_NAMES:
        data = (tmp_path / "dest" / name).read_bytes()
        assert data == (plain / name).read_bytes()
        assert sums[name] == hashlib.sha256(data).hexdigest()
    assert len(log) == 4 and all(str(src) in line for line in log)


@pytest.mark.bitwise
def test_fetch_verifies_checksums_and_names_the_file_and_expected_sum(tmp_path, small_mnist):
    name = "train-images-idx3-ubyte"
    message = fetch_fails(tmp_path / "dest", "checksum mismatch", source=small_mnist, verify_checksums=True)
    assert str(small_mnist / name) in message
    assert f"expected sha256 {MNIST_FILES[name][1]}" in message
    assert hashlib.sha256((small_mnist / name).read_bytes()).hexdigest() in message  # what it got
    assert not (tmp_path / "dest").exists()


# --- fetching from mirrors ----------------------------------------------------------------------


@pytest.fixture
def http_mirror(tmp_path):
    """A local HTTP server (127.0.0.1 only): returns (url of folder ``good``, url of folder ``bad``)."""
    root = tmp_path / "www"
    make_small_mnist(root / "good", gz=True)
    (root / "bad").mkdir()
    for name in FILE_NAMES:  # gzip header, corrupt deflate data
        (root / "bad" / f"{name}.gz").write_bytes(gzip.compress(b"x" * 1000)[:10] + b"\xff" * 40)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    yield f"{base}/good/", f"{base}/bad/"
    server.shutdown()
    server.server_close()


@pytest.mark.bitwise
def test_fetch_from_a_mirror(tmp_path, http_mirror):
    good, _ = http_mirror
    log = []
    fetch_mnist(tmp_path / "dest", mirrors=[good], verify_checksums=False, timeout=10, log=log.append)
    plain = make_small_mnist(tmp_path / "plain")
    for name in FILE_NAMES:
        assert (tmp_path / "dest" / name).read_bytes() == (plain / name).read_bytes()
    assert log == [f"downloaded {good}{name}.gz" for name in FILE_NAMES]


def test_a_corrupt_mirror_falls_through_to_the_next(tmp_path, http_mirror):
    good, bad = http_mirror
    log = []
    fetch_mnist(tmp_path / "dest", mirrors=[bad, good], verify_checksums=False, timeout=10, log=log.append)
    assert all(line.startswith(f"downloaded {good}") for line in log)
    assert len(list((tmp_path / "dest").iterdir())) == 4


def test_mirror_checksum_failure_is_reported_per_url(tmp_path, http_mirror):
    good, _ = http_mirror
    message = fetch_fails(tmp_path / "dest", "could not fetch train-images-idx3-ubyte from any mirror",
                          mirrors=[good], verify_checksums=True, timeout=10)
    assert "checksum mismatch" in message and f"{good}train-images-idx3-ubyte.gz" in message


def test_all_mirrors_failing_gives_one_message_naming_what_was_tried_and_data_source(tmp_path, http_mirror):
    _, bad = http_mirror
    mirrors = ["http://127.0.0.1:9/", bad]  # port 9 (discard): connection refused, nothing leaves the machine
    message = fetch_fails(tmp_path / "dest", "could not fetch train-images-idx3-ubyte from any mirror",
                          mirrors=mirrors, timeout=5)
    assert "http://127.0.0.1:9/train-images-idx3-ubyte.gz" in message
    assert f"{bad}train-images-idx3-ubyte.gz" in message
    assert "--config data_source=" in message
    assert not (tmp_path / "dest").exists()


# --- bad data: every error names the file, nothing is written --------------------------------


def test_missing_folder(tmp_path):
    message = fetch_fails(tmp_path / "dest", "is not a folder", source=tmp_path / "no_such_folder")
    assert str(tmp_path / "no_such_folder") in message and "data_source" in message


def test_missing_file(tmp_path, small_mnist):
    (small_mnist / "t10k-labels-idx1-ubyte").unlink()
    message = fetch_fails(tmp_path / "dest", "missing t10k-labels-idx1-ubyte", source=small_mnist,
                          verify_checksums=False)
    assert str(small_mnist) in message


def test_truncated_gz(tmp_path):
    src = make_small_mnist(tmp_path / "src", gz=True)
    path = src / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-20])
    fetch_fails(tmp_path / "dest", f"cannot read {re.escape(str(path))}: Compressed file ended",
                source=src, verify_checksums=False)


def test_corrupt_gz_data(tmp_path):
    src = make_small_mnist(tmp_path / "src", gz=True)
    path = src / "t10k-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    data[30:60] = b"\xff" * 30
    path.write_bytes(bytes(data))
    fetch_fails(tmp_path / "dest", f"cannot read {re.escape(str(path))}", source=src, verify_checksums=False)


def test_not_gzip_despite_the_name(tmp_path):
    src = make_small_mnist(tmp_path / "src", gz=True)
    (src / "train-labels-idx1-ubyte.gz").write_bytes(b"<html>404 Not Found</html>")
    fetch_fails(tmp_path / "dest", "train-labels-idx1-ubyte.gz: Not a gzipped file", source=src,
                verify_checksums=False)


def test_wrong_idx_magic(tmp_path, small_mnist):
    path = small_mnist / "t10k-labels-idx1-ubyte"
    path.write_bytes(b"\x00\x00\x0b\x01" + path.read_bytes()[4:])  # int32 labels
    fetch_fails(tmp_path / "dest", f"{re.escape(str(path))}: bad IDX magic 0x00000b01", source=small_mnist,
                verify_checksums=False)


def test_truncated_idx(tmp_path, small_mnist):
    path = small_mnist / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    fetch_fails(tmp_path / "dest", f"{re.escape(str(path))}: IDX header says shape", source=small_mnist,
                verify_checksums=False)


def test_image_label_count_mismatch(tmp_path, small_mnist):
    write_idx(small_mnist / "t10k-labels-idx1-ubyte", np.zeros(150, dtype=np.uint8))
    message = fetch_fails(tmp_path / "dest", "holds 200 images but .* holds 150 labels", source=small_mnist,
                          verify_checksums=False)
    assert str(small_mnist / "t10k-images-idx3-ubyte") in message
    assert str(small_mnist / "t10k-labels-idx1-ubyte") in message


def test_images_of_another_size(tmp_path, small_mnist):
    path = small_mnist / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((600, 32, 32), dtype=np.uint8))
    fetch_fails(tmp_path / "dest", rf"{re.escape(str(path))}: images of shape \(32, 32\), expected 28x28",
                source=small_mnist, verify_checksums=False)


def test_labels_where_images_belong(tmp_path, small_mnist):
    path = small_mnist / "t10k-images-idx3-ubyte"
    shutil.copy(small_mnist / "t10k-labels-idx1-ubyte", path)
    fetch_fails(tmp_path / "dest", f"{re.escape(str(path))}: images of shape", source=small_mnist,
                verify_checksums=False)


def test_labels_outside_0_to_9(tmp_path, small_mnist):
    path = small_mnist / "train-labels-idx1-ubyte"
    write_idx(path, np.full(600, 26, dtype=np.uint8))  # e.g. EMNIST letters
    fetch_fails(tmp_path / "dest", f"{re.escape(str(path))}: label 26 outside 0-9", source=small_mnist,
                verify_checksums=False)


def test_folder_of_another_dataset_by_name(tmp_path):
    cifar = tmp_path / "cifar-10-batches-py"
    cifar.mkdir()
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        (cifar / name).write_bytes(b"\x80\x04")
    message = fetch_fails(tmp_path / "dest", "missing train-images-idx3-ubyte", source=cifar)
    assert str(cifar) in message and all(name in message for name in FILE_NAMES)


def test_folder_of_another_dataset_with_mnist_names(tmp_path):
    """Fashion-MNIST uses MNIST's file names and format: only the checksums tell them apart."""
    fashion = make_small_mnist(tmp_path / "fashion", seed=7)
    name = "train-images-idx3-ubyte"
    message = fetch_fails(tmp_path / "dest", "not MNIST", source=fashion, verify_checksums=True)
    assert str(fashion / name) in message and MNIST_FILES[name][1] in message


@pytest.mark.bitwise
def test_a_failed_fetch_leaves_the_previous_files_untouched(tmp_path):
    dest = tmp_path / "dest"
    fetch_mnist(dest, source=make_small_mnist(tmp_path / "v1"), verify_checksums=False, log=quiet)
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    other = make_small_mnist(tmp_path / "v2", seed=3)
    write_idx(other / "t10k-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8))  # the last file is bad
    fetch_fails(dest, "holds 200 images but", source=other, verify_checksums=False)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before


# --- the real files ---------------------------------------------------------------------------


real_data = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"no MNIST at {SHARED_MNIST}")


@pytest.mark.real_data
@real_data
def test_real_mnist_passes_the_pinned_checksums(tmp_path):
    sums = fetch_mnist(tmp_path / "dest", source=SHARED_MNIST, verify_checksums=True, log=quiet)
    assert sums == {name: digest for name, (_, digest) in MNIST_FILES.items()}
    arrays = read_mnist_arrays(tmp_path / "dest")
    assert arrays["train-images-idx3-ubyte"].shape == (60000, 28, 28)
    assert arrays["t10k-labels-idx1-ubyte"].shape == (10000,)


@pytest.mark.real_data
@real_data
def test_real_mnist_with_one_corrupt_byte_in_the_last_file(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in FILE_NAMES[:3]:
        (src / f"{name}.gz").symlink_to(SHARED_MNIST / f"{name}.gz")
    name = FILE_NAMES[3]
    data = bytearray(gzip.decompress((SHARED_MNIST / f"{name}.gz").read_bytes()))
    data[5000] ^= 1  # one label changes
    (src / name).write_bytes(bytes(data))
    message = fetch_fails(tmp_path / "dest", "checksum mismatch", source=src, verify_checksums=True)
    assert str(src / name) in message and MNIST_FILES[name][1] in message
    assert not (tmp_path / "dest").exists()  # three good files, but nothing written
