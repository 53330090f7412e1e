"""Data sets for the examples: real Fashion-MNIST and the tutorials' small sets.

Fashion-MNIST
-------------
:func:`load_fashion_mnist` reads the four official IDX ``.gz`` files (Xiao, Rasul &
Vollgraf 2017, MIT licence, Zalando Research), looking in this order:

1. the ``path`` argument;
2. the directory named by the ``FASTNN_DATA`` environment variable;
3. ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu package ``dataset-fashion-mnist``);
4. the user cache, ``$XDG_CACHE_HOME/fastnn/fashion-mnist`` (default ``~/.cache/...``);
5. else it downloads the official files into that cache, verifies each one's
   checksum and only then renames it into place (a failed or interrupted download
   never leaves a partial file behind).

A directory "holds" the data if it (or its ``fashion-mnist`` subdirectory) contains
all four files.  An explicit ``path`` or ``FASTNN_DATA`` that does not is an error
(naming the missing files) rather than a silent fall-through to another copy.

Files are parsed strictly: gzip integrity (CRC and length), IDX magic numbers
(2051 images, 2049 labels), 28x28 images, exact payload size with no trailing
bytes, labels in 0..9 and as many labels as images.  Any violation raises
:class:`DatasetError` naming the file; nothing returns a half-read array.

Small sets
----------
:func:`logic_gates`, :func:`toy_people`, :func:`coffee_roasting` and
:func:`random_regression` generate the tutorials' toy data (documented with
their sources below).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import numbers
import os
import sys
import tempfile
import zlib
from pathlib import Path
from urllib.request import urlopen

import numpy as np

from .dispatch.validation import check_int

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "FASHION_MNIST_CLASSES",
    "cache_dir",
    "coffee_roasting",
    "load_fashion_mnist",
    "locate_fashion_mnist",
    "logic_gates",
    "random_regression",
    "read_idx",
    "toy_people",
]

ENV_VAR = "FASTNN_DATA"
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_PACKAGE = "dataset-fashion-mnist"

#: Official download locations (Zalando Research), tried in order.  The S3 site is
#: plain HTTP, which is why every downloaded file is checksum-verified.
MIRRORS: tuple[str, ...] = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)

#: Labels 0..9 in order (from the dataset's README).
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

#: File name -> (MD5 of the official .gz as published by Zalando,
#: SHA-256 of the decompressed IDX payload).
#:
#: Two digests because the same data ships in two gzip wrappings: Zalando's files
#: carry the original file name in the gzip header, the Debian package's copies do
#: not (24 and 23 bytes shorter), so the compressed bytes - and their digests -
#: differ while the IDX payloads are identical.  The SHA-256s below were computed
#: from the decompressed files of ``dataset-fashion-mnist``; a download is accepted
#: if either digest matches.
CHECKSUMS: dict[str, tuple[str, str]] = {
    "train-images-idx3-ubyte.gz": (
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte.gz": (
        "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte.gz": (
        "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = CHECKSUMS
FILE_NAMES: tuple[str, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10

_DOWNLOAD_TIMEOUT = 60.0  # seconds per network read
_CHUNK = 1 << 20


class DatasetError(ValueError):
    """A data file is corrupt, truncated, of the wrong format or fails its checksum."""


class DatasetNotFoundError(FileNotFoundError):
    """No copy of the data set was found and none could be downloaded."""


# --------------------------------------------------------------------------- IDX


def read_idx(path, expected_magic: int | None = None, dtype=np.uint8) -> np.ndarray:
    """Read one gzip-compressed IDX file of unsigned bytes, strictly.

    Returns a writeable array of ``dtype`` (default ``uint8``: the bytes as they
    are) shaped by the file's header (``(n,)`` for labels, ``(n, rows, cols)`` for
    images).  Another dtype is filled while decompressing, a chunk at a time, so
    no full-size ``uint8`` copy is ever held next to it.  Raises
    :class:`DatasetError` naming ``path`` for a bad gzip stream (corrupt,
    truncated, CRC error), an unexpected magic number, a payload that is shorter
    or longer than the header says.
    """
    path = Path(path)
    # Opening errors (missing file, permissions) propagate as they are; only what
    # comes out of the gzip stream is judged below.
    with open(path, "rb") as raw:
        compressed_size = os.fstat(raw.fileno()).st_size
        return _parse_idx(raw, path, expected_magic, compressed_size, np.dtype(dtype))


#: Bytes decompressed per step when converting to another dtype while reading.
_CHUNK = 1 << 20


def _parse_idx(raw, path: Path, expected_magic, compressed_size: int, dtype) -> np.ndarray:
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as f:
            head = _read_exactly(f, 4, path, "magic number")
            magic = int.from_bytes(head, "big")
            if expected_magic is not None and magic != expected_magic:
                raise DatasetError(
                    f"{path}: bad IDX magic number {magic} (expected {expected_magic}: "
                    f"{'images' if expected_magic == IMAGES_MAGIC else 'labels'}); "
                    "not a Fashion-MNIST file of this kind"
                )
            if head[0] != 0 or head[1] != 0 or head[2] != 0x08 or not 1 <= head[3] <= 4:
                raise DatasetError(
                    f"{path}: bad IDX magic number {magic} (expected 2049 or 2051: "
                    "unsigned bytes, 1 or 3 dimensions)"
                )
            ndim = head[3]
            dims_raw = _read_exactly(f, 4 * ndim, path, "dimensions")
            dims = tuple(int.from_bytes(dims_raw[4 * i : 4 * i + 4], "big") for i in range(ndim))
            size = math.prod(dims)
            # Deflate expands at most ~1032:1, so a header claiming more than that is
            # corrupt: say so instead of trying to allocate the claimed size.
            if size > 1100 * compressed_size + 4096:
                raise DatasetError(
                    f"{path}: IDX header claims shape {dims} ({size} bytes), more than a "
                    f"{compressed_size}-byte gzip file can hold: corrupt header"
                )
            if dtype == np.uint8:
                buf = bytearray(size)
                got = f.readinto(buf) if size else 0
                out = np.frombuffer(buf, dtype=np.uint8)
            else:
                out = np.empty(size, dtype)
                chunk = bytearray(min(size, _CHUNK))
                got = 0
                while got < size:
                    n = f.readinto(memoryview(chunk)[: min(_CHUNK, size - got)])
                    if n == 0:
                        break
                    out[got : got + n] = np.frombuffer(chunk, np.uint8, n)
                    got += n
            if got != size:
                raise DatasetError(
                    f"{path}: truncated IDX payload: header says shape {dims} "
                    f"({size} bytes) but the file holds only {got} bytes"
                )
            # Reading past the end also makes gzip check the stream's CRC and length.
            extra = f.read(1)
            if extra:
                raise DatasetError(
                    f"{path}: IDX payload longer than its header's shape {dims} "
                    f"({size} bytes): trailing data"
                )
    except DatasetError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        # gzip.BadGzipFile (an OSError) for bad headers/CRC, EOFError for truncation.
        raise DatasetError(f"{path}: corrupt or truncated gzip file ({exc})") from exc
    return out.reshape(dims)


def _read_exactly(f, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise DatasetError(f"{path}: file too short to hold the IDX {what}")
    return data


def _read_images(path: Path, dtype=np.uint8) -> np.ndarray:
    images = read_idx(path, IMAGES_MAGIC, dtype)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise DatasetError(
            f"{path}: images must be {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}, "
            f"header says shape {images.shape}"
        )
    return images


def _read_labels(path: Path) -> np.ndarray:
    labels = read_idx(path, LABELS_MAGIC)
    if labels.size and labels.max() >= N_CLASSES:
        raise DatasetError(
            f"{path}: label {int(labels.max())} out of range: Fashion-MNIST labels are 0..9"
        )
    return labels


# ------------------------------------------------------------------- locations


def cache_dir() -> Path:
    """The per-user download cache: ``$XDG_CACHE_HOME/fastnn/fashion-mnist``."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    root = Path(base) if base.strip() else Path.home() / ".cache"
    return root / "fastnn" / "fashion-mnist"


def _missing(directory: Path) -> list[str]:
    return [name for name in FILE_NAMES if not (directory / name).is_file()]


def _holding_dir(directory: Path) -> Path | None:
    """``directory`` or its ``fashion-mnist`` subdirectory if it holds all four files."""
    for d in (directory, directory / "fashion-mnist"):
        if not _missing(d):
            return d
    return None


def _explicit_dir(directory, source: str) -> Path:
    directory = Path(os.fspath(directory)).expanduser()
    found = _holding_dir(directory)
    if found is not None:
        return found
    if not directory.exists():
        raise DatasetNotFoundError(f"{source}: directory {directory} does not exist")
    raise DatasetNotFoundError(
        f"{source}: {directory} does not hold the Fashion-MNIST files; missing: "
        f"{', '.join(_missing(directory))}"
    )


def _options_text(cache: Path) -> str:
    return (
        "get a copy with any of: `sudo apt-get install "
        f"{APT_PACKAGE}` (installs {SYSTEM_DIR}); "
        f"load_fashion_mnist(path=DIR) or the {ENV_VAR}=DIR environment variable, with DIR "
        f"holding {', '.join(FILE_NAMES)}; or go online once so they are downloaded from "
        f"{MIRRORS[0]} into the cache {cache}"
    )


def _locate(path, download: bool) -> Path:
    if path is not None:
        return _explicit_dir(path, "path argument")
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return _explicit_dir(env.strip(), f"{ENV_VAR} environment variable")
    found = _holding_dir(SYSTEM_DIR)
    if found is not None:
        return found
    cache = cache_dir()
    if not _missing(cache):
        return cache
    if not download:
        raise DatasetNotFoundError(
            f"Fashion-MNIST not found (download=False); {_options_text(cache)}"
        )
    _download_missing(cache)
    return cache


def locate_fashion_mnist(path=None) -> Path:
    """The directory :func:`load_fashion_mnist` would read, without downloading.

    Raises :class:`DatasetNotFoundError` (naming the ways to get the data) if no
    copy is found along the lookup order.
    """
    return _locate(path, download=False)


# -------------------------------------------------------------------- download


def _verify(tmp: Path, name: str, md5_hex: str) -> None:
    """Accept ``tmp`` if its MD5 or its IDX payload's SHA-256 is the expected one."""
    md5_expected, sha_expected = CHECKSUMS[name]
    if md5_hex == md5_expected:
        return
    try:
        payload = hashlib.sha256()
        with gzip.open(tmp, "rb") as f:
            while chunk := f.read(_CHUNK):
                payload.update(chunk)
        sha_hex = payload.hexdigest()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"downloaded {name} failed its checksum: MD5 {md5_hex} (expected "
            f"{md5_expected}) and it is not a valid gzip file ({exc})"
        ) from exc
    if sha_hex != sha_expected:
        raise DatasetError(
            f"downloaded {name} failed its checksum: MD5 {md5_hex} (expected "
            f"{md5_expected}), SHA-256 of its content {sha_hex} (expected {sha_expected})"
        )


def _download_one(url: str, name: str, target: Path) -> None:
    """Download ``url`` to ``target`` atomically: temp file, verify, ``os.replace``."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        md5 = hashlib.md5(usedforsecurity=False)
        with os.fdopen(fd, "wb") as out, urlopen(url, timeout=_DOWNLOAD_TIMEOUT) as resp:
            while chunk := resp.read(_CHUNK):
                md5.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        _verify(tmp, name, md5.hexdigest())
        os.replace(tmp, target)
    except BaseException:
        # Also on KeyboardInterrupt: never leave a partial file behind.
        tmp.unlink(missing_ok=True)
        raise


def _download_missing(cache: Path) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetNotFoundError(
            f"Fashion-MNIST not found and the cache {cache} cannot be created ({exc}); "
            f"{_options_text(cache)}"
        ) from exc
    for name in _missing(cache):
        errors: list[str] = []
        bad_checksum: DatasetError | None = None
        for base in MIRRORS:
            url = base + name
            print(f"fastnn: downloading {url} -> {cache}", file=sys.stderr)
            try:
                _download_one(url, name, cache / name)
                break
            except DatasetError as exc:
                bad_checksum = exc
                errors.append(f"{url}: {exc}")
            except (OSError, ValueError) as exc:  # URLError, timeouts, HTTP errors
                errors.append(f"{url}: {exc}")
        else:
            if bad_checksum is not None:
                raise DatasetError(
                    f"no verified copy of {name} could be downloaded: {'; '.join(errors)}"
                ) from bad_checksum
            raise DatasetNotFoundError(
                f"Fashion-MNIST not found and the download failed ({'; '.join(errors)}); "
                f"{_options_text(cache)}"
            )


# ---------------------------------------------------------------------- loader


def _float_dtype(dtype, allow_uint8: bool = False) -> np.dtype:
    try:
        # np.dtype(None) is float64: a missing dtype must not pass silently.
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    valid = [np.dtype(np.float32), np.dtype(np.float64)]
    if allow_uint8:
        valid.append(np.dtype(np.uint8))
    if dt is None or not any(dt == v for v in valid):
        names = ", ".join(repr(str(v)) for v in valid)
        raise ValueError(f"dtype must be one of {names}, got {dtype!r}")
    return dt


def load_fashion_mnist(path=None, dtype="float32", normalize=True, *, download=True):
    """Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``.

    * ``x_train: (60000, 784)``, ``x_test: (10000, 784)`` of ``dtype``, rows are
      28x28 images flattened row by row; scaled to ``[0, 1]`` (pixel / 255) when
      ``normalize``, else the raw 0..255 values (``dtype="uint8"`` then allowed);
    * ``y_train: (60000,)``, ``y_test: (10000,)`` int64 class labels in 0..9
      (names in :data:`FASHION_MNIST_CLASSES`).

    ``path``: a directory holding the four official ``.gz`` files (see the module
    docstring for the lookup order).  ``download=False`` never touches the network.
    """
    if not isinstance(normalize, bool):
        raise TypeError(f"normalize must be True or False, got {normalize!r}")
    dt = _float_dtype(dtype, allow_uint8=not normalize)
    directory = _locate(path, download)
    arrays = {}
    for split, img_name, lab_name in (
        ("train", TRAIN_IMAGES, TRAIN_LABELS),
        ("test", TEST_IMAGES, TEST_LABELS),
    ):
        images = _read_images(directory / img_name, dt)
        labels = _read_labels(directory / lab_name)
        if images.shape[0] != labels.shape[0]:
            raise DatasetError(
                f"{directory}: {img_name} holds {images.shape[0]} images but {lab_name} "
                f"holds {labels.shape[0]} labels"
            )
        x = images.reshape(images.shape[0], -1)  # already of dtype dt (read_idx)
        if dt != np.uint8 and normalize:
            x /= dt.type(255)  # correctly rounded per element, exact 0 and 1
        arrays[split] = (x, labels.astype(np.int64))
    return arrays["train"], arrays["test"]


# ------------------------------------------------------------------ small sets

#: Truth tables of the two-input gates (inputs in the order 00, 01, 10, 11).
GATES: dict[str, tuple[int, int, int, int]] = {
    "AND": (0, 0, 0, 1),
    "OR": (0, 1, 1, 1),
    "NAND": (1, 1, 1, 0),
    "NOR": (1, 0, 0, 0),
    "XOR": (0, 1, 1, 0),
}


def logic_gates(name: str, dtype="float64"):
    """Truth table of a two-input logic gate as ``(x, y)``.

    ``name``: one of ``AND``, ``OR``, ``NAND``, ``NOR``, ``XOR`` (any case).
    ``x: (4, 2)`` rows ``[0,0], [0,1], [1,0], [1,1]``; ``y: (4, 1)`` 0/1 targets.
    """
    if not isinstance(name, str) or name.strip().upper() not in GATES:
        raise ValueError(f"unknown logic gate {name!r}; valid gates are: {', '.join(GATES)}")
    dt = _float_dtype(dtype)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dt)
    y = np.array(GATES[name.strip().upper()], dtype=dt).reshape(4, 1)
    return x, y


#: The 4-person set of Victor Zhou's "Machine Learning for Beginners: An
#: Introduction to Neural Networks" (2019): name, weight (lb), height (in), gender
#: label (1 = female, 0 = male).  The tutorial shifts weight by -135 lb and height
#: by -66 in so the values are centred near 0.
PEOPLE: tuple[tuple[str, int, int, int], ...] = (
    ("Alice", 133, 65, 1),
    ("Bob", 160, 72, 0),
    ("Charlie", 152, 70, 0),
    ("Diana", 120, 60, 1),
)
PEOPLE_SHIFT: tuple[int, int] = (135, 66)
#: The tutorial's two unseen people, for predictions: Emily (female), Frank (male).
PEOPLE_NEW: tuple[tuple[str, int, int, int], ...] = (
    ("Emily", 128, 63, 1),
    ("Frank", 155, 68, 0),
)


def toy_people(shifted: bool = True, dtype="float64", new: bool = False):
    """The 4-person height/weight set as ``(x, y)`` (see :data:`PEOPLE`).

    ``x: (4, 2)`` columns ``[weight, height]`` (lb, in), minus ``(135, 66)`` when
    ``shifted`` (Alice ``[-2, -1]``, Bob ``[25, 6]``, Charlie ``[17, 4]``,
    Diana ``[-15, -6]``); ``y: (4, 1)``, 1 for female.  ``new=True`` returns the
    tutorial's two unseen people (Emily ``[-7, -3]``, Frank ``[20, 2]``) instead.
    """
    if not isinstance(shifted, bool) or not isinstance(new, bool):
        raise TypeError("shifted and new must be True or False")
    dt = _float_dtype(dtype)
    rows = PEOPLE_NEW if new else PEOPLE
    x = np.array([[w, h] for _, w, h, _ in rows], dtype=dt)
    if shifted:
        x -= np.array(PEOPLE_SHIFT, dtype=dt)
    y = np.array([[g] for *_, g in rows], dtype=dt)
    return x, y


def _check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


#: Coffee-roasting region (from the roasting lab of Andrew Ng's "Advanced Learning
#: Algorithms" course): temperature in degrees C, duration in minutes.
COFFEE_TEMPERATURE = (150.0, 285.0)
COFFEE_DURATION = (11.5, 15.5)


def coffee_is_good(temperature, duration):
    """The documented "good roast" rule, elementwise, as a boolean array.

    Good iff ``175 < T < 260`` and ``12 < d < 15`` and ``d <= 21 - 3 T / 85``
    (the line through (175, 14.82) and (260, 11.82): hotter roasts must be
    shorter).  This is the course lab's rule verbatim.
    """
    t = np.asarray(temperature, dtype=np.float64)
    d = np.asarray(duration, dtype=np.float64)
    limit = -3.0 / (260.0 - 175.0) * t + 21.0
    return (t > 175) & (t < 260) & (d > 12) & (d < 15) & (d <= limit)


def coffee_roasting(n: int = 200, seed: int | None = 2, dtype="float64"):
    """The coffee-roasting set: ``x: (n, 2)`` ``[temperature C, duration min]``, ``y: (n, 1)``.

    Temperature uniform in [150, 285), duration uniform in [11.5, 15.5), drawn as
    ``numpy.random.default_rng(seed).random((n, 2))`` scaled; ``y = 1`` for a good
    roast per :func:`coffee_is_good`.  ``n=200, seed=2`` reproduces the course
    lab's 200 examples exactly.
    """
    n = check_int("n", n, low=1)
    seed = _check_seed(seed)
    dt = _float_dtype(dtype)
    U = np.random.default_rng(seed).random(2 * n).reshape(-1, 2)
    x = np.empty((n, 2))
    x[:, 0] = U[:, 0] * (COFFEE_TEMPERATURE[1] - COFFEE_TEMPERATURE[0]) + COFFEE_TEMPERATURE[0]
    x[:, 1] = U[:, 1] * (COFFEE_DURATION[1] - COFFEE_DURATION[0]) + COFFEE_DURATION[0]
    y = coffee_is_good(x[:, 0], x[:, 1]).astype(dt).reshape(n, 1)
    return x.astype(dt), y


def random_regression(
    n: int = 100, n_in: int = 10, n_out: int = 5, seed: int | None = 0, dtype="float64"
):
    """Random data for the tutorial's ``(10, 15, 5)`` sigmoid network.

    ``x: (n, n_in)`` standard normal, ``y: (n, n_out)`` uniform in ``[0, 1)`` (the
    range of a sigmoid output), both from ``numpy.random.default_rng(seed)``.  The
    targets are pure noise, as in the tutorial: the net can only memorize them, so
    the loss falls steadily but slowly.
    """
    n = check_int("n", n, low=1)
    n_in = check_int("n_in", n_in, low=1)
    n_out = check_int("n_out", n_out, low=1)
    seed = _check_seed(seed)
    dt = _float_dtype(dtype)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, n_in)).astype(dt)
    y = rng.random((n, n_out)).astype(dt)
    return x, y
