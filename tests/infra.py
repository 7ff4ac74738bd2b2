"""Start the test broker and store by hand (`python -m tests.infra`), so repeated pytest runs reuse them."""

from leadflow.devstack import up
from tests.conftest import TEST_STACK

if __name__ == "__main__":
    up(TEST_STACK, infra_only=True)
