import contextlib
import dataclasses

import pytest
import torch

from acda import ops


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture
def one_thread():
    """One torch thread: on a loaded 2-core machine two threads oversubscribe and run many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@contextlib.contextmanager
def _spy_backend(name: str, *fields: str):
    """Count the calls of ``ops.BACKENDS[name].<field>`` for each field while the context is open."""
    calls = dict.fromkeys(fields, 0)
    original = ops.BACKENDS[name]

    def counted(field):
        fn = getattr(original, field)

        def wrapper(*args):
            calls[field] += 1
            return fn(*args)
        return wrapper

    ops.BACKENDS[name] = dataclasses.replace(original, **{field: counted(field) for field in fields})
    try:
        yield calls
    finally:
        ops.BACKENDS[name] = original


@pytest.fixture
def spy_backend():
    """``with spy_backend("native", "forward", "backward") as calls: ...`` counts backend calls."""
    return _spy_backend
