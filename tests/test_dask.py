"""fastnn on Dask: out-of-core training, distributed prediction and search, workers.

Everything runs on a real ``distributed.LocalCluster`` (2 worker processes, one
thread each).  References are computed in this process on the same blocks, by
scikit-learn-style in-memory calls (``partial_fit`` loops, ``predict``,
``GridSearchCV`` with ``n_jobs=1``) under one BLAS thread, as the workers use:
OpenBLAS rounds a float32 GEMM row differently depending on the thread count and
on the row's position in the call, so bitwise equality is asserted block by block,
and against one whole-array call only up to the per-dtype tolerance below.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

REASON = "the dask extra is not installed (pip install 'fastnn[dask]')"
dask = pytest.importorskip("dask", reason=REASON)
da = pytest.importorskip("dask.array", reason=REASON)
distributed = pytest.importorskip("distributed", reason=REASON)
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers", reason=REASON)
dask_ml_search = pytest.importorskip("dask_ml.model_selection", reason=REASON)

import joblib  # noqa: E402  (after the skips: only meaningful with the extra)
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import fastnn  # noqa: E402
import fastnn.dask as fdask  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

BACKENDS = fastnn.available_backends()
DTYPES = (np.float32, np.float64)
#: Whole-array vs block-wise predict_proba: a few ulp of the probabilities.
PROBA_TOL = {np.float32: 2e-6, np.float64: 1e-13}
CLASSES = np.array([0, 1, 2])
ROWS, FEATURES, BLOCK = 1200, 20, 200


TRAIN_BACKENDS = [b for b in ("numpy", "numba") if b in BACKENDS]


# --------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def client():
    """A real 2-process, 1-thread-per-worker cluster, closed in bounded time."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    c = distributed.Client(cluster, timeout="60s")
    c.wait_for_workers(2, timeout=60)
    yield c
    c.close(timeout=30)
    cluster.close(timeout=30)


def data(dtype):
    X, y = make_classification(
        ROWS, FEATURES, n_informative=8, n_classes=3, random_state=0, class_sep=2.0
    )
    return X.astype(dtype), y


def blocks(A, size=BLOCK):
    return [A[i : i + size] for i in range(0, len(A), size)]


def fit_in_memory(dtype):
    """``(model, X, y)``: a classifier fitted in memory (numpy backend), its data."""
    X, y = data(dtype)
    model = MLPClassifier((16,), backend="numpy", max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 30 epochs are enough here
        model.fit(X, y)
    return model, X, y


@pytest.fixture(scope="module", params=DTYPES, ids=lambda d: d.__name__)
def fitted_each_dtype(request):
    return fit_in_memory(request.param)


@pytest.fixture(scope="module")
def fitted():
    return fit_in_memory(np.float32)


def one_thread_partial_fits(model, X_blocks, y_blocks, order, **kwargs):
    """The in-memory reference: ``partial_fit`` block by block on one BLAS thread."""
    with threadpool_limits(1):
        for i in order:
            model.partial_fit(X_blocks[i], y_blocks[i], **kwargs)
    return model


def assert_same_model(a, b):
    for A, B in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert A.dtype == B.dtype
        np.testing.assert_array_equal(A, B)
    assert a.loss_curve_ == b.loss_curve_
    assert a.t_ == b.t_


# --------------------------------------------------------------------- 1. the extra
def test_core_install_does_not_import_dask():
    code = (
        "import sys, fastnn; print(any(m.startswith(('dask', 'distributed')) for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_extra_declared_and_core_dependencies_unchanged():
    import tomllib

    meta = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=\[]", r)[0] for r in meta["optional-dependencies"]["dask"]]
    assert {"dask", "distributed", "dask-ml"} <= set(names)
    assert not any("dask" in r or "distributed" in r for r in meta["dependencies"])
    test_extra = " ".join(meta["optional-dependencies"]["test"])
    assert all(n in test_extra for n in ("dask[array]", "distributed", "dask-ml"))


# --------------------------------------------------------------------- 2. out-of-core
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.__name__)
@pytest.mark.parametrize("backend", TRAIN_BACKENDS)
def test_incremental_over_npy_equals_in_memory_partial_fit(client, tmp_path, backend, dtype):
    X, y = data(dtype)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    X_d = fdask.from_npy(tmp_path / "X.npy", BLOCK)
    y_d = fdask.from_npy(tmp_path / "y.npy", BLOCK)
    assert X_d.numblocks == (ROWS // BLOCK, 1) and X_d.dtype == dtype
    est = MLPClassifier((16,), backend=backend, random_state=0, batch_size=50)
    inc = dask_ml_wrappers.Incremental(est, shuffle_blocks=False).fit(X_d, y_d, classes=CLASSES)

    X_mm, y_mm = np.load(tmp_path / "X.npy", mmap_mode="r"), np.load(tmp_path / "y.npy")
    n_blocks = X_d.numblocks[0]
    ref = one_thread_partial_fits(
        MLPClassifier((16,), backend=backend, random_state=0, batch_size=50),
        blocks(X_mm), blocks(y_mm), range(n_blocks), classes=CLASSES,
    )  # fmt: skip
    assert_same_model(inc.estimator_, ref)
    assert len(ref.loss_curve_) == n_blocks


@pytest.mark.parametrize("backend", TRAIN_BACKENDS)
def test_partial_fit_helper_shuffled_blocks_equal_in_memory(client, backend):
    X, y = data(np.float32)
    X_d, y_d = da.from_array(X, chunks=(BLOCK, 7)), da.from_array(y, chunks=BLOCK)
    est = MLPClassifier((16,), solver="sgd", backend=backend, random_state=1, batch_size=64)
    got = fdask.partial_fit(est, X_d, y_d, shuffle_blocks=True, random_state=3, classes=CLASSES)
    assert not hasattr(est, "coefs_"), "the model passed in is not changed"
    order = np.random.RandomState(3).permutation(ROWS // BLOCK)
    assert not np.array_equal(order, np.arange(len(order)))
    ref = one_thread_partial_fits(
        MLPClassifier((16,), solver="sgd", backend=backend, random_state=1, batch_size=64),
        blocks(X), blocks(y), order, classes=CLASSES,
    )  # fmt: skip
    assert_same_model(got, ref)
    # dask-ml's Incremental with the same random_state visits the blocks in that order too
    # (it needs the columns in one block: it would pass each row block's first one only).
    inc = dask_ml_wrappers.Incremental(est, shuffle_blocks=True, random_state=3)
    assert_same_model(inc.fit(X_d.rechunk({1: -1}), y_d, classes=CLASSES).estimator_, ref)


# --------------------------------------------------------------------- 3. prediction
@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_equals_in_memory(client, fitted_each_dtype, backend):
    model, X, _ = fitted_each_dtype
    model = pickle.loads(pickle.dumps(model)).set_params(backend=backend)
    X_d = da.from_array(X, chunks=(BLOCK, FEATURES))
    labels = fdask.predict(model, X_d).compute()
    P = fdask.predict_proba(model, X_d).compute()
    logP = fdask.predict_log_proba(model, X_d).compute()
    with threadpool_limits(1):  # bitwise: the same call on the same block, one thread
        np.testing.assert_array_equal(labels, np.concatenate([model.predict(B) for B in blocks(X)]))
        np.testing.assert_array_equal(
            P, np.concatenate([model.predict_proba(B) for B in blocks(X)])
        )
        np.testing.assert_array_equal(
            logP, np.concatenate([model.predict_log_proba(B) for B in blocks(X)])
        )
    # One whole-array call in memory (any thread count): same labels, probabilities to a few ulp.
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_allclose(P, model.predict_proba(X), rtol=0, atol=PROBA_TOL[X.dtype.type])
    assert labels.dtype == model.classes_.dtype and P.shape == (ROWS, 3)


def test_parallel_post_fit_and_string_labels_and_regressor(client, fitted):
    model, X, y = fitted
    X_d = da.from_array(X, chunks=BLOCK)
    ppf = dask_ml_wrappers.ParallelPostFit(model)
    with threadpool_limits(1):
        expected = np.concatenate([model.predict(B) for B in blocks(X)])
        expected_P = np.concatenate([model.predict_proba(B) for B in blocks(X)])
    np.testing.assert_array_equal(ppf.predict(X_d).compute(), expected)
    np.testing.assert_array_equal(ppf.predict_proba(X_d).compute(), expected_P)

    names = np.array(["cat", "dog", "eel"])[y]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = MLPClassifier((8,), backend="numpy", max_iter=5, random_state=0).fit(X, names)
        reg = MLPRegressor(hidden_layer_sizes=(8,), backend="numpy", max_iter=5, random_state=0)
        Xr, Yr = make_regression(ROWS, FEATURES, n_targets=2, random_state=0)
        reg.fit(Xr.astype(X.dtype), Yr)
    got = fdask.predict(clf, X_d).compute()
    assert set(got) <= set(names)
    np.testing.assert_array_equal(got, clf.predict(X))
    out = fdask.predict(reg, da.from_array(Xr.astype(X.dtype), chunks=BLOCK)).compute()
    with threadpool_limits(1):
        np.testing.assert_array_equal(
            out, np.concatenate([reg.predict(B) for B in blocks(Xr.astype(X.dtype))])
        )
    assert out.shape == (ROWS, 2)


def worker_identity(model, X):
    """Runs on a worker: its pid and the unpickled model's predictions."""
    return os.getpid(), model.predict(X), model.predict_proba(X)


def fit_on_worker(X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MLPClassifier((16,), backend="numpy", max_iter=5, random_state=0).fit(X, y)


def test_models_pickle_to_and_from_worker_processes(client, fitted):
    model, X, y = fitted
    workers = sorted(client.scheduler_info()["workers"])
    results = [
        client.submit(worker_identity, model, X, workers=[w], pure=False).result() for w in workers
    ]
    pids = {pid for pid, _, _ in results}
    assert os.getpid() not in pids and len(pids) == 2, "two real worker processes"
    with threadpool_limits(1):
        for _, labels, P in results:
            np.testing.assert_array_equal(labels, model.predict(X))
            np.testing.assert_array_equal(P, model.predict_proba(X))
        local = fit_on_worker(X, y)
    remote = client.submit(fit_on_worker, X, y, workers=workers[:1]).result()
    assert_same_model(remote, local)


# --------------------------------------------------------------------- 4. search
def test_grid_search_on_the_dask_joblib_backend_equals_in_memory(client):
    X, y = data(np.float64)
    X, y = X[:600], y[:600]
    grid = {"alpha": [1e-4, 1e-1], "hidden_layer_sizes": [(4,), (16,)]}
    est = MLPClassifier(backend="numpy", max_iter=15, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with joblib.parallel_backend("dask"):
            on_dask = GridSearchCV(est, grid, cv=3).fit(X, y)
        with threadpool_limits(1):
            in_memory = GridSearchCV(est, grid, cv=3, n_jobs=1).fit(X, y)
    prefixes = client.cluster.scheduler.task_prefixes
    assert any(p.startswith("batch_of__fit_and_score") for p in prefixes), "fits ran as tasks"
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_score"], in_memory.cv_results_["mean_test_score"]
    )
    assert on_dask.best_params_ == in_memory.best_params_
    assert_same_model(on_dask.best_estimator_, in_memory.best_estimator_)


def test_hyperband_search_drives_partial_fit(client):
    X, y = data(np.float64)
    X_d, y_d = da.from_array(X, chunks=BLOCK), da.from_array(y, chunks=BLOCK)
    params = {"alpha": [1e-5, 1e-1], "learning_rate_init": [1e-3, 1e-2]}
    search = dask_ml_search.HyperbandSearchCV(
        MLPClassifier((16,), backend="numpy", random_state=0), params, max_iter=4, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "4 parameter sets < n_iter"
        with fdask.incremental_search_compat():
            search.fit(X_d, y_d, classes=CLASSES)
    assert isinstance(search.best_estimator_, MLPClassifier)
    assert search.metadata_["partial_fit_calls"] > 0
    assert search.best_estimator_.n_iter_ >= 1
    assert search.best_score_ > 0.7, "3 well-separated classes: far above chance (1/3)"


def test_incremental_search_compat_still_needed(client):
    """When this fails, dask-ml fixed dask/dask-ml#1016: incremental_search_compat can go."""
    X, y = data(np.float64)
    search = dask_ml_search.HyperbandSearchCV(
        MLPClassifier((4,), backend="numpy"), {"alpha": [1e-4, 1e-2]}, max_iter=2
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        with pytest.raises(RuntimeError, match="asynchronous Client"):
            search.fit(
                da.from_array(X, chunks=BLOCK), da.from_array(y, chunks=BLOCK), classes=CLASSES
            )


# --------------------------------------------------------------------- 5. workers
def threads_in_task():
    """Run as a task: the pools the executor thread's kernels see (numba backend loaded)."""
    fastnn.get_ops("numba" if "numba" in fastnn.available_backends() else "numpy")
    return fdask.worker_threads()


def thread_reports(client):
    workers = sorted(client.scheduler_info()["workers"])
    futures = [client.submit(threads_in_task, workers=[w], pure=False) for w in workers]
    return [f.result() for f in futures]


@pytest.mark.skipif("numba" not in BACKENDS, reason="the Numba pool check needs Numba")
def test_workers_use_their_own_thread_count(client):
    cores = os.cpu_count()
    before = thread_reports(client)
    if cores > 1:  # without the settings, each worker's Numba pool takes every core
        assert all(r["numba"] == cores for r in before), before
    fdask.configure_workers(client)
    after = thread_reports(client)
    for r in after:
        assert r["nthreads"] == 1
        assert r["fastnn"] == 1 and r["numba"] == 1 and r["blas"] and set(r["blas"]) == {1}, r


HIDE_NUMBA = """
import importlib.abc, sys

class HideNumba(importlib.abc.MetaPathFinder):
    # This worker behaves as if Numba were not installed.
    def find_spec(self, name, path=None, target=None):
        if name == "numba" or name.startswith("numba."):
            raise ModuleNotFoundError("No module named 'numba'", name="numba")

sys.meta_path.insert(0, HideNumba())
"""


def predict_recording_warnings(model, X):
    import fastnn as worker_fastnn

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels, P = model.predict(X), model.predict_proba(X)
    return labels, P, [str(w.message) for w in caught], worker_fastnn.available_backends()


@pytest.fixture(scope="module")
def client_without_numba():
    """A one-worker cluster whose worker process cannot import Numba."""
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
        silence_logs=logging.ERROR, preload=[HIDE_NUMBA],
    )  # fmt: skip
    c = distributed.Client(cluster, timeout="60s")
    yield c
    c.close(timeout=30)
    cluster.close(timeout=30)


def check_falls_back_to_numpy(c, model, X):
    labels, P, messages, available = c.submit(predict_recording_warnings, model, X).result()
    assert "numba" not in available, "the worker has no Numba"
    assert any("Numba cannot be imported" in m and "'numpy'" in m for m in messages), messages
    on_numpy = pickle.loads(pickle.dumps(model)).set_params(backend="numpy")
    with threadpool_limits(1):
        np.testing.assert_array_equal(labels, on_numpy.predict(X))
        np.testing.assert_array_equal(P, on_numpy.predict_proba(X))
    got = fdask.predict(model, da.from_array(X, chunks=BLOCK))
    np.testing.assert_array_equal(c.compute(got).result(), labels)


@pytest.mark.skipif("numba" not in BACKENDS, reason="needs a numba model made here")
def test_numba_model_predicts_where_numba_is_missing(client_without_numba, fitted):
    model, X, _ = fitted
    # The weights of a fitted model, set to predict on numba (as a numba-trained one is).
    model = pickle.loads(pickle.dumps(model)).set_params(backend="numba")
    check_falls_back_to_numpy(client_without_numba, model, X)


@pytest.mark.parametrize("backend", ["numba"] if "numba" in BACKENDS else [])
def test_numba_trained_model_predicts_where_numba_is_missing(client_without_numba, backend):
    X, y = data(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MLPClassifier((16,), backend=backend, max_iter=3, random_state=0).fit(X, y)
    check_falls_back_to_numpy(client_without_numba, model, X)


# --------------------------------------------------------------------- 6. failures
def kill_worker_process(client, address):
    """SIGKILL the worker process at ``address`` (a crash: its results are lost)."""
    for nanny in client.cluster.workers.values():
        if nanny.worker_address == address:
            os.kill(nanny.process.process.pid, signal.SIGKILL)
            return
    raise AssertionError(f"no worker at {address}")


def test_killed_worker_mid_prediction_result_complete_and_exact(client, fitted):
    model, X, _ = fitted
    big = np.tile(X, (10, 1))  # 12,000 rows in 60 blocks
    X_d = da.from_array(big, chunks=(BLOCK, FEATURES))
    future = client.compute(fdask.predict_proba(model, X_d))
    scheduler = client.cluster.scheduler
    deadline = time.monotonic() + 60
    victim = None
    while victim is None and time.monotonic() < deadline:
        held = {}
        for ts in scheduler.tasks.values():
            if ts.state == "memory" and str(ts.key).find("call_on_block") >= 0:
                for ws in ts.who_has:
                    held[ws.address] = held.get(ws.address, 0) + 1
        victim = max(held, key=held.get) if held else None
        time.sleep(0.01)
    assert victim is not None and not future.done(), "killed while the prediction runs"
    kill_worker_process(client, victim)
    P = future.result(timeout=120)
    with threadpool_limits(1):
        np.testing.assert_array_equal(
            P, np.concatenate([model.predict_proba(B) for B in blocks(big)])
        )
    assert victim not in client.scheduler_info()["workers"], "that worker process is gone"
    client.wait_for_workers(2, timeout=60)  # the nanny starts a new one


def in_memory_error(call):
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_bad_block_gets_the_in_memory_error_naming_the_block(client, fitted, method):
    model, X, _ = fitted
    bad = X.copy()
    bad[450, 3] = np.nan
    expected = in_memory_error(lambda: getattr(model, method)(bad[400:600]))
    assert "NaN" in expected
    lazy = getattr(fdask, method)(model, da.from_array(bad, chunks=BLOCK))
    with pytest.raises(ValueError, match=re.escape(f"block 2 (rows 400:600) of X: {expected}")):
        lazy.compute()


def load_block(A):
    return A


def test_wrong_feature_count_in_a_block_and_whole_array(client, fitted):
    model, X, _ = fitted
    # A block whose file holds 21 columns while the array was declared with 20.
    parts = [
        da.from_delayed(dask.delayed(load_block)(B), B.shape, dtype=B.dtype) for B in blocks(X)
    ]
    wide = np.hstack([X[200:400], X[200:400, :1]])
    parts[1] = da.from_delayed(dask.delayed(load_block)(wide), (200, FEATURES), dtype=X.dtype)
    expected = in_memory_error(lambda: model.predict(wide))
    assert "21 features" in expected
    with pytest.raises(ValueError, match=re.escape(f"block 1 (rows 200:400) of X: {expected}")):
        fdask.predict(model, da.concatenate(parts)).compute()
    # A whole array of the wrong width fails at once, with the in-memory message.
    X_wide = da.from_array(np.hstack([X, X[:, :1]]), chunks=BLOCK)
    with pytest.raises(ValueError, match=re.escape(expected)):
        fdask.predict(model, X_wide)


def test_label_outside_classes_names_the_block(client):
    X, y = data(np.float64)
    y = y.copy()
    y[1000] = 7
    X_d, y_d = da.from_array(X, chunks=BLOCK), da.from_array(y, chunks=BLOCK)
    fresh = MLPClassifier((8,), backend="numpy", random_state=0)
    expected = in_memory_error(
        lambda: fresh.partial_fit(X[:200], y[:200], classes=CLASSES).partial_fit(
            X[1000:1200], y[1000:1200]
        )
    )
    assert "classes" in expected
    with pytest.raises(
        ValueError, match=re.escape(f"block 5 (rows 1000:1200) of X, y: {expected}")
    ):
        fdask.partial_fit(
            MLPClassifier((8,), backend="numpy", random_state=0), X_d, y_d, classes=CLASSES
        )
    # dask-ml's Incremental raises the same in-memory error (it does not know block names).
    inc = dask_ml_wrappers.Incremental(MLPClassifier((8,), backend="numpy", random_state=0))
    with pytest.raises(ValueError, match=re.escape(expected)):
        inc.fit(X_d, y_d, classes=CLASSES)
