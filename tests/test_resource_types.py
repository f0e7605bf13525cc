"""Resource types and group validation (issue 10 §1, §5 bad input): pure, no I/O."""

from __future__ import annotations

import pytest

from events.resource_spec import ResourceSpec
from actors.resource_types import (ProcessParams, RayActorParams, params_of, resource_from_dict, start_order,
                                   stop_order, validate_group, validate_resource)


def proc(name: str, *deps: str, **params) -> ResourceSpec:
    return ResourceSpec(name=name, type="process", params={"argv": ["sleep", "1"], **params}, depends_on=deps)


def test_process_params_normalised_with_defaults():
    spec = validate_resource(proc("web", port=8080, probe="http"))
    assert isinstance(spec, ResourceSpec)
    p = params_of(spec)
    assert isinstance(p, ProcessParams)
    assert (p.argv, p.port, p.probe, p.http_path, p.host, p.env) == (("sleep", "1"), 8080, "http", "/", "127.0.0.1", {})


def test_ray_actor_params_normalised():
    spec = validate_resource(ResourceSpec(name="c", type="ray_actor",
                                          params={"cls": "examples.counter:Counter", "health_method": "ping"}))
    assert isinstance(spec, ResourceSpec)
    p = params_of(spec)
    assert isinstance(p, RayActorParams) and p.cls == "examples.counter:Counter" and p.detached


@pytest.mark.parametrize("spec, needle", [
    (ResourceSpec(name="x", type="cron", params={}), "unknown type 'cron' (one of: process, ray_actor)"),
    (ResourceSpec(name="x", type="process", params={}), "params.argv: Field required"),
    (ResourceSpec(name="x", type="process", params={"argv": []}), "params.argv"),
    (ResourceSpec(name="x", type="process", params={"argv": ["a"], "probe": "tcp"}), "probe 'tcp' needs a port"),
    (ResourceSpec(name="x", type="process", params={"argv": ["a"], "port": 70000}), "params.port"),
    (ResourceSpec(name="x", type="process", params={"argv": ["a"], "colour": 1}), "params.colour: Extra inputs"),
    (ResourceSpec(name="x", type="ray_actor", params={"cls": "no_colon"}), "params.cls"),
])
def test_bad_resource_is_one_line_naming_the_problem(spec, needle):
    err = validate_resource(spec, "g")
    assert isinstance(err, str) and needle in err and err.startswith("group 'g' resource 'x'")
    assert "\n" not in err


def test_resource_from_dict_names_a_missing_field():
    err = resource_from_dict({"name": "x"}, "g")
    assert isinstance(err, str) and "type: Field required" in err and "\n" not in err


@pytest.mark.parametrize("resources, needle", [
    ([proc("a", "b")], "depends on unknown resource 'b'"),
    ([proc("a", "a")], "depends on itself"),
    ([proc("a"), proc("a")], "declared twice"),
    ([proc("a", "c"), proc("b", "a"), proc("c", "b")], "dependency cycle a -> c -> b -> a"),
])
def test_bad_group_is_one_line(resources, needle):
    err = validate_group(resources, "g")
    assert isinstance(err, str) and needle in err, err


def test_start_order_is_topological_and_stable_by_declaration():
    group = validate_group([proc("web", "db", "cache"), proc("cache"), proc("db"), proc("log")], "g")
    assert not isinstance(group, str)
    assert [s.name for s in start_order(group)] == ["cache", "db", "web", "log"]
    assert [s.name for s in stop_order(group)] == ["log", "web", "db", "cache"]


def test_start_order_refuses_a_cycle():
    with pytest.raises(ValueError):
        start_order([proc("a", "b"), proc("b", "a")])
