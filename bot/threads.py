"""Thread counts of the numeric libraries, for one call."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator


@contextmanager
def one_thread(get_threads: Callable[[], int], set_threads: Callable[[int], None]) -> Iterator[None]:
    """Run the block on one library thread, then restore the count. torch's and FAISS's (OpenMP) thread
    counts are per calling thread, so a rebuild's batches on another thread keep theirs."""
    threads = get_threads()
    if threads > 1:
        set_threads(1)
    try:
        yield
    finally:
        if threads > 1:
            set_threads(threads)
