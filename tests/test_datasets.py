"""fastnn.datasets: the Fashion-MNIST loader (lookup, strict parsing, verified
atomic download) and the toy-set generators.

Nothing here touches the network: downloads are served from ``file://`` URLs or
a fake ``urlopen`` returning bytes the tests generate.  Expected values come from
the real files read independently (``gzip`` + ``struct``), from hand-written truth
tables and from the documented rules, never from the loader's own output.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest

from fastnn import datasets
from fastnn.datasets import DatasetError, DatasetNotFoundError

REAL_DIR = Path("/usr/share/datasets/fashion-mnist")
HAVE_REAL = all((REAL_DIR / n).is_file() for n in datasets.FILE_NAMES)
needs_real = pytest.mark.skipif(
    not HAVE_REAL, reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)

# ----------------------------------------------------------------- IDX writers


def idx_images(images: np.ndarray, magic: int = 2051, n: int | None = None) -> bytes:
    """IDX bytes for ``images (n, rows, cols)`` uint8; ``n`` overrides the header count."""
    count, rows, cols = images.shape
    header = struct.pack(">iIII", magic, count if n is None else n, rows, cols)
    return header + images.astype(np.uint8).tobytes()


def idx_labels(labels: np.ndarray, magic: int = 2049, n: int | None = None) -> bytes:
    header = struct.pack(">iI", magic, len(labels) if n is None else n)
    return header + labels.astype(np.uint8).tobytes()


def gz(data: bytes, mtime: int = 0) -> bytes:
    return gzip.compress(data, mtime=mtime)


def synthetic_set(seed: int, n_train: int = 12, n_test: int = 5):
    """Random 28x28 images and labels; returns {file name: raw IDX bytes} and the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    raw = {
        datasets.TRAIN_IMAGES: idx_images(arrays["x_train"]),
        datasets.TRAIN_LABELS: idx_labels(arrays["y_train"]),
        datasets.TEST_IMAGES: idx_images(arrays["x_test"]),
        datasets.TEST_LABELS: idx_labels(arrays["y_test"]),
    }
    return raw, arrays


def write_set(directory: Path, seed: int, **overrides: bytes) -> dict:
    """Write a synthetic set (gzip-compressed) into ``directory``; ``overrides`` maps a
    file name (``train_images`` style keys) to replacement *file* bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    raw, arrays = synthetic_set(seed)
    for name, data in raw.items():
        key = name.split("-idx")[0].replace("-", "_").replace("t10k", "test")
        content = overrides.get(key, gz(data))
        (directory / name).write_bytes(content)
    return arrays


def assert_loaded(result, arrays, dtype=np.float32):
    (x_train, y_train), (x_test, y_test) = result
    for x, key in ((x_train, "x_train"), (x_test, "x_test")):
        expected = arrays[key].reshape(len(arrays[key]), 784).astype(np.float64) / 255
        assert x.dtype == dtype and x.shape == expected.shape
        # float32: /255 correctly rounded, so within half an ulp (<= 6e-8) of the exact value.
        np.testing.assert_allclose(x, expected, rtol=0, atol=6e-8 if dtype == np.float32 else 0)
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    np.testing.assert_array_equal(y_test, arrays["y_test"])
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No FASTNN_DATA, an empty system dir, an empty cache and no network."""
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.setattr(datasets, "SYSTEM_DIR", tmp_path / "system")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def no_network(*args, **kwargs):
        raise URLError("network disabled in tests")

    monkeypatch.setattr(datasets, "urlopen", no_network)
    return tmp_path


# ------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def real():
    return datasets.load_fashion_mnist(REAL_DIR)


def _read_raw_gz(path: Path, offset: int) -> np.ndarray:
    """Independent reader: decompress, skip the header, return the bytes."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read()[offset:], dtype=np.uint8)


@needs_real
def test_real_shapes_dtypes_ranges(real):
    (x_train, y_train), (x_test, y_test) = real
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.dtype == np.int64
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0
        assert np.isfinite(x).all()
    assert set(np.unique(y_train)) == set(range(10)) == set(np.unique(y_test))


@needs_real
def test_real_class_balance(real):
    (_, y_train), (_, y_test) = real
    # The dataset's README: 6,000 training and 1,000 test images per class.
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test, minlength=10), [1000] * 10)


@needs_real
def test_real_values_match_independent_reader(real):
    (x_train, y_train), (x_test, y_test) = real
    pixels = _read_raw_gz(REAL_DIR / datasets.TRAIN_IMAGES, 16)
    labels = _read_raw_gz(REAL_DIR / datasets.TRAIN_LABELS, 8)
    np.testing.assert_array_equal(y_train, labels)
    # Rows 0, 1 and the last: pixel / 255 in float32.
    for i in (0, 1, 59999):
        expected = (pixels[784 * i : 784 * (i + 1)] / 255).astype(np.float32)
        np.testing.assert_array_equal(x_train[i], expected)
    np.testing.assert_array_equal(y_test, _read_raw_gz(REAL_DIR / datasets.TEST_LABELS, 8))


@needs_real
def test_real_payload_digests_match_hardcoded():
    """The hard-coded SHA-256s are those of the installed official data."""
    for name, (_, sha) in datasets.CHECKSUMS.items():
        with gzip.open(REAL_DIR / name, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == sha, name


@needs_real
def test_real_float64_and_raw(isolated):
    (x64, _), _ = datasets.load_fashion_mnist(REAL_DIR, dtype="float64")
    assert x64.dtype == np.float64 and x64.max() == 1.0
    (raw, _), _ = datasets.load_fashion_mnist(REAL_DIR, dtype="uint8", normalize=False)
    assert raw.dtype == np.uint8 and raw.max() == 255
    np.testing.assert_array_equal(x64[:100], raw[:100] / 255.0)


@needs_real
def test_system_dir_is_found_without_arguments(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert datasets.SYSTEM_DIR == REAL_DIR
    (x, _), _ = datasets.load_fashion_mnist(download=False)
    assert x.shape == (60000, 784)


# ---------------------------------------------------------------- lookup order


def test_path_argument(isolated):
    arrays = write_set(isolated / "mine", seed=1)
    assert_loaded(datasets.load_fashion_mnist(isolated / "mine"), arrays)
    assert_loaded(datasets.load_fashion_mnist(str(isolated / "mine"), dtype="float64"), arrays,
                  dtype=np.float64)  # fmt: skip


def test_fashion_mnist_subdirectory_is_accepted(isolated):
    arrays = write_set(isolated / "data" / "fashion-mnist", seed=2)
    assert_loaded(datasets.load_fashion_mnist(isolated / "data"), arrays)


def test_path_wins_over_env_env_over_system_system_over_cache(isolated, monkeypatch):
    a_path = write_set(isolated / "p", seed=1)
    a_env = write_set(isolated / "env", seed=2)
    a_sys = write_set(isolated / "system", seed=3)
    a_cache = write_set(datasets.cache_dir(), seed=4)
    monkeypatch.setenv("FASTNN_DATA", str(isolated / "env"))
    assert_loaded(datasets.load_fashion_mnist(isolated / "p"), a_path)
    assert_loaded(datasets.load_fashion_mnist(), a_env)
    monkeypatch.delenv("FASTNN_DATA")
    assert_loaded(datasets.load_fashion_mnist(), a_sys)
    for name in datasets.FILE_NAMES:
        (isolated / "system" / name).unlink()
    assert_loaded(datasets.load_fashion_mnist(), a_cache)


def test_cache_dir_follows_xdg(isolated, monkeypatch):
    assert datasets.cache_dir() == isolated / "cache" / "fastnn" / "fashion-mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(isolated / "home"))
    assert datasets.cache_dir() == isolated / "home" / ".cache" / "fastnn" / "fashion-mnist"


def test_explicit_path_missing_files_is_an_error(isolated):
    write_set(isolated / "partial", seed=1)
    (isolated / "partial" / datasets.TEST_LABELS).unlink()
    with pytest.raises(DatasetNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        datasets.load_fashion_mnist(isolated / "partial")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        datasets.load_fashion_mnist(isolated / "nowhere")


def test_env_pointing_at_missing_files_is_an_error(isolated, monkeypatch):
    (isolated / "empty").mkdir()
    monkeypatch.setenv("FASTNN_DATA", str(isolated / "empty"))
    with pytest.raises(DatasetNotFoundError, match="FASTNN_DATA.*missing"):
        datasets.load_fashion_mnist()


def test_offline_without_copy_names_every_option(isolated):
    with pytest.raises(DatasetNotFoundError) as info:
        datasets.load_fashion_mnist()
    msg = str(info.value)
    for needle in (
        "apt-get install dataset-fashion-mnist",
        "FASTNN_DATA",
        "path=",
        str(datasets.cache_dir()),
        "network disabled in tests",
    ):
        assert needle in msg, needle
    assert not any(datasets.cache_dir().glob("*")), "failed download left files behind"


def test_locate_without_download(isolated, monkeypatch):
    write_set(isolated / "system", seed=1)
    assert datasets.locate_fashion_mnist() == isolated / "system"
    assert datasets.locate_fashion_mnist(isolated / "system") == isolated / "system"
    for name in datasets.FILE_NAMES:
        (isolated / "system" / name).unlink()
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        datasets.locate_fashion_mnist()


def test_download_false_never_touches_network(isolated, monkeypatch):
    def forbidden(*a, **k):
        raise AssertionError("urlopen called with download=False")

    monkeypatch.setattr(datasets, "urlopen", forbidden)
    with pytest.raises(DatasetNotFoundError, match="download=False.*apt-get install"):
        datasets.load_fashion_mnist(download=False)


# ------------------------------------------------------------- strict parsing


def _corrupt_case(tmp_path, key, content):
    directory = tmp_path / key
    write_set(directory, seed=5, **{key: content})
    return directory


def _raw(seed=5):
    raw, arrays = synthetic_set(seed)
    return raw, arrays


@pytest.mark.parametrize(
    "key, make, match",
    [
        # gzip stream cut short: the IDX payload cannot be complete.
        ("train_images", lambda r, a: gz(r[datasets.TRAIN_IMAGES])[:-40], "corrupt or truncated"),
        # Not gzip at all.
        ("train_labels", lambda r, a: b"this is not a gzip file", "corrupt or truncated"),
        # A flipped byte in the compressed data: CRC/zlib error.
        ("test_images", lambda r, a: _flip(gz(r[datasets.TEST_IMAGES]), 40), "corrupt|truncated"),
        # Labels where images belong: magic 2049 != 2051.
        ("train_images", lambda r, a: gz(r[datasets.TRAIN_LABELS]), "magic number 2049"),
        ("test_labels", lambda r, a: gz(idx_labels(a["y_test"], magic=2051)), "magic number"),
        ("train_labels", lambda r, a: gz(struct.pack(">i", 0x0D01) + b"\0" * 20), "magic"),
        # Header promises more images than the payload holds.
        ("train_images", lambda r, a: gz(idx_images(a["x_train"], n=13)), "truncated IDX payload"),
        # Payload longer than the header's shape.
        ("test_labels", lambda r, a: gz(idx_labels(a["y_test"], n=4)), "trailing data"),
        # Header cut inside the dimensions.
        ("test_images", lambda r, a: gz(struct.pack(">iI", 2051, 5)), "too short"),
        # Wrong image size (27 x 28).
        ("train_images", lambda r, a: gz(idx_images(a["x_train"][:, :27, :])), "28x28"),
        # A label outside 0..9.
        ("train_labels", lambda r, a: gz(idx_labels(np.full(12, 10))), "label 10 out of range"),
        # Image and label counts disagree (both files valid on their own).
        ("train_labels", lambda r, a: gz(idx_labels(a["y_train"][:11])), "12 images but"),
        # Empty file.
        ("test_labels", lambda r, a: b"", "too short|corrupt"),
        # A header claiming 2**32-1 images: rejected without allocating 3 TB.
        ("train_images", lambda r, a: gz(struct.pack(">iIII", 2051, 2**32 - 1, 28, 28)),
         "more than a"),
    ],
    ids=[
        "truncated-gzip", "not-gzip", "flipped-byte", "images-magic", "labels-magic",
        "foreign-magic", "short-payload", "trailing-data", "short-header", "wrong-image-size",
        "label-range", "count-mismatch", "empty-file", "huge-header",
    ],
)  # fmt: skip
def test_corrupt_files_give_clear_errors_naming_the_file(tmp_path, key, make, match):
    raw, arrays = _raw()
    directory = _corrupt_case(tmp_path, key, make(raw, arrays))
    with pytest.raises(DatasetError, match=match) as info:
        datasets.load_fashion_mnist(directory)
    assert str(directory) in str(info.value)


def _flip(data: bytes, pos: int) -> bytes:
    b = bytearray(data)
    b[pos] ^= 0xFF
    return bytes(b)


def test_read_idx_returns_header_shape(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x.gz"
    p.write_bytes(gz(idx_images(images)))
    out = datasets.read_idx(p, 2051)
    np.testing.assert_array_equal(out, images)
    out[0, 0, 0] = 7  # writeable, owned
    with pytest.raises(DatasetError, match="magic number 2051"):
        datasets.read_idx(p, 2049)
    with pytest.raises(FileNotFoundError):
        datasets.read_idx(tmp_path / "missing.gz")


# ------------------------------------------------------------------ download


def _served(tmp_path) -> tuple[str, dict, dict]:
    """A file:// mirror holding a synthetic set; returns (url, CHECKSUMS, arrays)."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    raw, arrays = synthetic_set(seed=9)
    sums = {}
    for name, data in raw.items():
        blob = gz(data, mtime=1234)
        (mirror / name).write_bytes(blob)
        sums[name] = (hashlib.md5(blob).hexdigest(), hashlib.sha256(data).hexdigest())
    return mirror.as_uri() + "/", sums, arrays


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("*")) if directory.exists() else []


def test_download_verifies_and_writes_into_cache(isolated, monkeypatch):
    from urllib.request import urlopen

    url, sums, arrays = _served(isolated)
    monkeypatch.setattr(datasets, "urlopen", urlopen)
    monkeypatch.setattr(datasets, "MIRRORS", ("file:///nonexistent-mirror/", url))
    monkeypatch.setattr(datasets, "CHECKSUMS", sums)
    assert_loaded(datasets.load_fashion_mnist(), arrays)
    assert _leftovers(datasets.cache_dir()) == sorted(datasets.FILE_NAMES)
    # Second call: found in the cache, no network.
    monkeypatch.setattr(datasets, "urlopen", None)
    assert_loaded(datasets.load_fashion_mnist(), arrays)


def test_download_accepts_other_gzip_wrapping_by_payload_digest(isolated, monkeypatch):
    """Same IDX content, different gzip header (MD5 differs): SHA-256 of content matches."""
    from urllib.request import urlopen

    url, sums, arrays = _served(isolated)
    wrong_md5 = {name: ("0" * 32, sha) for name, (_, sha) in sums.items()}
    monkeypatch.setattr(datasets, "urlopen", urlopen)
    monkeypatch.setattr(datasets, "MIRRORS", (url,))
    monkeypatch.setattr(datasets, "CHECKSUMS", wrong_md5)
    assert_loaded(datasets.load_fashion_mnist(), arrays)


def test_download_checksum_mismatch_is_rejected_and_leaves_nothing(isolated, monkeypatch):
    from urllib.request import urlopen

    url, sums, _ = _served(isolated)
    monkeypatch.setattr(datasets, "urlopen", urlopen)
    monkeypatch.setattr(datasets, "MIRRORS", (url,))
    # The real (official) digests: the synthetic files cannot match them.
    with pytest.raises(DatasetError, match="failed its checksum") as info:
        datasets.load_fashion_mnist()
    assert datasets.TRAIN_IMAGES in str(info.value)
    assert _leftovers(datasets.cache_dir()) == []


class _FailingResponse(io.RawIOBase):
    """Serves ``good`` bytes, then fails as a dropped connection would."""

    def __init__(self, good: bytes, exc: BaseException):
        self.data = io.BytesIO(good)
        self.exc = exc

    def read(self, n=-1):
        chunk = self.data.read(min(n, 1000) if n and n > 0 else 1000)
        if not chunk:
            raise self.exc
        return chunk

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize(
    "exc, expected",
    [
        (ConnectionResetError("connection reset by peer"), DatasetNotFoundError),
        (TimeoutError("timed out"), DatasetNotFoundError),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
    ids=["reset", "timeout", "ctrl-c"],
)
def test_download_failing_midway_leaves_no_partial_file(isolated, monkeypatch, exc, expected):
    raw, _ = synthetic_set(seed=3)
    blob = gz(raw[datasets.TRAIN_IMAGES])
    calls = []

    def fake_urlopen(url, timeout=None):
        calls.append(url)
        return _FailingResponse(blob[: len(blob) // 2], exc)

    monkeypatch.setattr(datasets, "urlopen", fake_urlopen)
    with pytest.raises(expected):
        datasets.load_fashion_mnist()
    assert calls, "download was not attempted"
    assert _leftovers(datasets.cache_dir()) == []


def test_download_completes_missing_files_only(isolated, monkeypatch):
    from urllib.request import urlopen

    url, sums, arrays = _served(isolated)
    cache = datasets.cache_dir()
    cache.mkdir(parents=True)
    # One file already cached (from the same mirror): only the other three are fetched.
    (cache / datasets.TRAIN_LABELS).write_bytes(
        (isolated / "mirror" / datasets.TRAIN_LABELS).read_bytes()
    )
    fetched = []

    def counting(u, timeout=None):
        fetched.append(u.rsplit("/", 1)[1])
        return urlopen(u, timeout=timeout)

    monkeypatch.setattr(datasets, "urlopen", counting)
    monkeypatch.setattr(datasets, "MIRRORS", (url,))
    monkeypatch.setattr(datasets, "CHECKSUMS", sums)
    assert_loaded(datasets.load_fashion_mnist(), arrays)
    assert sorted(fetched) == sorted(set(datasets.FILE_NAMES) - {datasets.TRAIN_LABELS})


# -------------------------------------------------------------- argument checks


@pytest.mark.parametrize("dtype", ["float16", "int32", "complex128", "nonsense", None])
def test_bad_dtype(isolated, dtype):
    with pytest.raises(ValueError, match="dtype must be one of"):
        datasets.load_fashion_mnist(isolated, dtype=dtype)


def test_uint8_needs_normalize_false(isolated):
    with pytest.raises(ValueError, match="dtype must be one of"):
        datasets.load_fashion_mnist(isolated, dtype="uint8")
    with pytest.raises(TypeError, match="normalize"):
        datasets.load_fashion_mnist(isolated, normalize="yes")


def test_raw_values_without_normalize(isolated):
    arrays = write_set(isolated / "d", seed=6)
    (x, _), _ = datasets.load_fashion_mnist(isolated / "d", dtype="float64", normalize=False)
    np.testing.assert_array_equal(x, arrays["x_train"].reshape(12, 784).astype(np.float64))


# --------------------------------------------------------------- toy generators

TRUTH = {
    "AND": [0, 0, 0, 1],
    "OR": [0, 1, 1, 1],
    "NAND": [1, 1, 1, 0],
    "NOR": [1, 0, 0, 0],
    "XOR": [0, 1, 1, 0],
}


@pytest.mark.parametrize("name", list(TRUTH))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logic_gates(name, dtype):
    x, y = datasets.logic_gates(name.lower(), dtype=dtype)
    assert x.shape == (4, 2) and y.shape == (4, 1)
    assert x.dtype == dtype and y.dtype == dtype
    np.testing.assert_array_equal(x, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y[:, 0], TRUTH[name])


def test_logic_gates_unknown_name():
    with pytest.raises(ValueError, match="valid gates are: AND, OR, NAND, NOR, XOR"):
        datasets.logic_gates("XNOR")
    with pytest.raises(ValueError, match="unknown logic gate"):
        datasets.logic_gates(3)


def test_toy_people_values_from_the_tutorial():
    x, y = datasets.toy_people()
    # Alice, Bob, Charlie, Diana: weight - 135 lb, height - 66 in; 1 = female.
    np.testing.assert_array_equal(x, [[-2, -1], [25, 6], [17, 4], [-15, -6]])
    np.testing.assert_array_equal(y[:, 0], [1, 0, 0, 1])
    raw, _ = datasets.toy_people(shifted=False)
    np.testing.assert_array_equal(raw, [[133, 65], [160, 72], [152, 70], [120, 60]])
    new, y_new = datasets.toy_people(new=True)
    np.testing.assert_array_equal(new, [[-7, -3], [20, 2]])  # Emily, Frank
    np.testing.assert_array_equal(y_new[:, 0], [1, 0])
    assert datasets.toy_people(dtype="float32")[0].dtype == np.float32


def _good_roast(t: float, d: float) -> bool:
    """The documented rule, written out independently with scalar arithmetic."""
    return 175 < t < 260 and 12 < d < 15 and d <= 21 - 3 * t / 85


def test_coffee_roasting_ranges_and_rule():
    x, y = datasets.coffee_roasting(n=500, seed=7)
    assert x.shape == (500, 2) and y.shape == (500, 1)
    assert (x[:, 0] >= 150).all() and (x[:, 0] < 285).all()
    assert (x[:, 1] >= 11.5).all() and (x[:, 1] < 15.5).all()
    expected = [_good_roast(float(t), float(d)) for t, d in x]
    np.testing.assert_array_equal(y[:, 0] == 1, expected)
    assert 0 < y.sum() < 500  # both classes present


def test_coffee_rule_at_documented_points():
    good = datasets.coffee_is_good
    assert good(200, 13.9) and not good(200, 17.0)  # the course's two test roasts
    assert not good(170, 13) and not good(265, 13)  # too cold / too hot
    assert not good(200, 11.9) and not good(200, 15.1)  # too short / too long
    assert good(250, 12.1) and not good(250, 12.5)  # above the line 21 - 3 t / 85 = 12.18


def test_coffee_roasting_default_is_the_course_lab_data():
    # The lab prints these extremes for its 200 examples before normalization:
    # "Temperature Max, Min pre normalization: 284.99, 151.32",
    # "Duration    Max, Min pre normalization: 15.45, 11.51".
    x, _ = datasets.coffee_roasting()
    assert x.shape == (200, 2)
    assert round(x[:, 0].max(), 2) == 284.99 and round(x[:, 0].min(), 2) == 151.32
    assert round(x[:, 1].max(), 2) == 15.45 and round(x[:, 1].min(), 2) == 11.51


def test_coffee_roasting_deterministic_per_seed():
    a = datasets.coffee_roasting(seed=3)
    b = datasets.coffee_roasting(seed=3)
    c = datasets.coffee_roasting(seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert datasets.coffee_roasting(dtype="float32")[0].dtype == np.float32


def test_random_regression():
    x, y = datasets.random_regression(n=100, seed=1)
    assert x.shape == (100, 10) and y.shape == (100, 5)
    assert (y >= 0).all() and (y < 1).all()
    assert abs(x.mean()) < 0.2 and 0.8 < x.std() < 1.2  # standard normal, 1000 draws
    np.testing.assert_array_equal(x, datasets.random_regression(n=100, seed=1)[0])
    x3, y3 = datasets.random_regression(n=7, n_in=3, n_out=2, dtype="float32")
    assert x3.shape == (7, 3) and y3.shape == (7, 2) and x3.dtype == np.float32


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: datasets.coffee_roasting(n=0), ValueError, "n must be >= 1"),
        (lambda: datasets.coffee_roasting(n=2.5), TypeError, "n must be an integer"),
        (lambda: datasets.coffee_roasting(seed=-1), ValueError, "seed"),
        (lambda: datasets.coffee_roasting(seed="a"), ValueError, "seed"),
        (lambda: datasets.random_regression(n_in=0), ValueError, "n_in must be >= 1"),
        (lambda: datasets.random_regression(n_out=True), TypeError, "n_out"),
        (lambda: datasets.random_regression(dtype="int8"), ValueError, "dtype"),
        (lambda: datasets.toy_people(shifted=1), TypeError, "shifted"),
    ],
)
def test_generator_argument_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
