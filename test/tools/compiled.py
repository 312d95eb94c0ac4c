"""The compiled (numba) twins' tests: skipped where numba is missing, failed instead where make test requires it."""

import os

#: Set by make test where it runs these tests again in .venv-dask, which has numba: a skip there would hide a check.
REQUIRE = "OVERLAP_RELEVANCE_REQUIRE_NUMBA"


def numba_missing(compiled):
    """True where ``compiled`` (what a ``compiled_*()`` factory returned) is None: numba did not import.
    Where :data:`REQUIRE` is set, that fails the test instead."""
    if compiled is None:
        assert not os.environ.get(REQUIRE), "numba should import in this environment"
        return True
    return False
