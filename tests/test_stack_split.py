"""How `make test` shares the integration modules out among the workers' stacks (tests/conftest.py)."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from tests.conftest import (
    CORE_STACK,
    MODULE_SECONDS,
    OWN_STACK,
    ROOT,
    pytest_xdist_make_scheduler,
    shared_stack_modules,
    stacks_of_modules,
)

MODULES = shared_stack_modules()


def test_every_integration_module_has_a_measured_duration():
    assert sorted(MODULE_SECONDS) == MODULES, "update MODULE_SECONDS from --durations of a cold make test"


def test_the_modules_off_the_full_stacks_exist_and_each_is_in_one_place():
    assert OWN_STACK and CORE_STACK and not OWN_STACK & CORE_STACK
    assert all((ROOT / "tests" / "integration" / m).exists() for m in OWN_STACK | CORE_STACK)


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


class FakeWorker:
    """What the scheduler sees of an xdist worker: the tests it was sent, in order."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices: list[int]) -> None:
        self.sent += indices

    def shutdown(self) -> None:
        self.shutting_down = True


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_full_stacks_go_first_and_the_units_with_services_only_to_the_worker_without_one(seed: int):
    nodeids = [f"tests/integration/{m}::test_{i}" for m in [*MODULES, *OWN_STACK, *CORE_STACK] for i in range(3)]
    nodeids += [f"tests/unit/test_u{i}.py::test_x" for i in range(40)]
    random.Random(seed).shuffle(nodeids)  # the collection order of pytest -p randomly
    config = SimpleNamespace(
        getoption=lambda name: 3,
        getvalue=lambda name: ["popen"] * 3,
        option=SimpleNamespace(loadscopereorder=True),
    )
    scheduler = pytest_xdist_make_scheduler(config, None)
    workers = [FakeWorker(f"gw{i}") for i in range(3)]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, nodeids)
    scheduler.schedule()
    # the stack workers finish their tests but the last two first (they ask for more then)
    for worker in workers[:2]:
        for index in worker.sent[:-2]:
            scheduler.mark_test_complete(worker, index)

    def scopes(worker: FakeWorker) -> list[str]:
        return list(dict.fromkeys(nodeids[i].split("::")[0].split("/")[1] for i in worker.sent))

    assert [scopes(w)[0] for w in workers[:2]] == ["integration", "integration"]
    stack_tests = {nodeids[i].split("::")[0].rsplit("/", 1)[1] for w in workers[:2] for i in w.sent}
    assert not stack_tests & (OWN_STACK | CORE_STACK) and set(MODULES) <= stack_tests
    done = 0  # the third worker runs what it is sent, one test after the other
    while done < len(workers[2].sent):
        scheduler.mark_test_complete(workers[2], workers[2].sent[done])
        done += 1
    own = [nodeids[i] for i in workers[2].sent[: 3 * len(OWN_STACK | CORE_STACK)]]
    assert {n.split("::")[0].rsplit("/", 1)[1] for n in own} == OWN_STACK | CORE_STACK
