"""How `make test` shares the integration modules out among the workers' stacks (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import MODULE_SECONDS, OWN_STACK, ROOT, shared_stack_modules, stacks_of_modules

MODULES = shared_stack_modules()


def test_every_integration_module_has_a_measured_duration():
    assert sorted(MODULE_SECONDS) == MODULES, "update MODULE_SECONDS from --durations of a cold make test"
    assert OWN_STACK and all((ROOT / "tests" / "integration" / m).exists() for m in OWN_STACK)


@pytest.mark.parametrize("stacks", [1, 2, 3, 4])
def test_each_module_runs_on_one_stack_and_the_longest_ones_apart(stacks: int):
    split = stacks_of_modules(MODULES, stacks)
    assert sorted(split) == MODULES and set(split.values()) == set(range(min(stacks, len(MODULES))))
    if stacks > 1:
        assert split["test_backfill.py"] != split["test_realtime.py"]
    load = [sum(MODULE_SECONDS[m] for m, s in split.items() if s == i) for i in range(stacks)]
    # no stack waits longer than the longest module or the even share plus one module
    assert max(load) <= max(max(MODULE_SECONDS.values()), sum(load) / stacks + max(MODULE_SECONDS.values()))


def test_a_new_module_counts_as_a_minute():
    assert stacks_of_modules(["test_new.py"], 2) == {"test_new.py": 0}
