"""The worker's memory processes run two at a time on a CPU (they time nothing but their own load): real forked
children, their lines forwarded whole, a death mid-model said for that model."""
import os
import time

from edgecheck.measure import worker


def _child(name, seconds, die, fd):
    worker._emit(fd, {"kind": "start", "name": name, "process": "memory"})
    t0 = time.time()
    time.sleep(seconds)
    if die:
        os._exit(9)
    worker._emit(fd, {"kind": "model", "name": name, "from": t0, "to": time.time(), "pad": "x" * 70000})


def _run(lanes, tasks):
    got = []
    worker.run_children([(_child, args, args[0], "memory") for args in tasks], got.append, lanes)
    return got


def test_two_lanes_overlap_and_forward_every_line():
    got = _run(2, [("a", 0.4, False), ("b", 0.4, False), ("c", 0.1, False)])
    models = {m["name"]: m for m in got if m["kind"] == "model"}
    assert set(models) == {"a", "b", "c"} and all(len(m["pad"]) == 70000 for m in models.values())
    assert models["a"]["from"] < models["b"]["to"] and models["b"]["from"] < models["a"]["to"]  # a and b overlap
    assert [m["kind"] for m in got].count("start") == 3


def test_one_lane_runs_them_one_after_the_other():
    got = _run(1, [("a", 0.2, False), ("b", 0.2, False)])
    models = {m["name"]: m for m in got if m["kind"] == "model"}
    assert models["a"]["to"] <= models["b"]["from"]


def test_a_child_that_dies_mid_model_is_an_error_for_that_model_only():
    got = _run(2, [("a", 0.05, True), ("b", 0.2, False)])
    errors = [m for m in got if m["kind"] == "error"]
    assert [e["name"] for e in errors] == ["a"] and "exited with status 9" in errors[0]["error"]
    assert [m["name"] for m in got if m["kind"] == "model"] == ["b"]
