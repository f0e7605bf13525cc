"""The resource types a group may hold, and group-level validation: pure, no I/O.

Each type has a pydantic model for its `params` (`ProcessParams`, `RayActorParams`);
`TYPE_PARAMS` is the registry the core consults when a group is applied, so the config DB
only ever holds specs a shell can run. Whether a command exists on a host is a question
for the shell or the `apply` CLI (the filesystem is not the core's to read).

`start_order` is topological over `depends_on`, stable by declaration order (of all the
resources whose dependencies have started, the one declared first starts next); the stop
order is its reverse, so a dependency outlives every resource that uses it.
"""

from __future__ import annotations

from typing import Any, Iterable, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from events.resource_spec import ResourceSpec

PORT_MIN, PORT_MAX = 1, 65535
CLASS_PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$"
METHOD_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_RESOURCES_PER_GROUP = 64
ERROR_MAX_CHARS = 300  # an error is one line a person reads, never a dump of the input


class _Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProcessParams(_Params):
    """A child process of the owner node, in its own process group (like WSFC's Generic
    Application). Health: alive, plus a TCP connect or an HTTP GET of `http_path` on `port`."""

    argv: tuple[str, ...] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    # NAME -> an absolute path on the owner node whose contents become $NAME at each start:
    # a secret stays in its file; the log, the API and `roster events` hold only the path.
    env_files: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    port: int | None = Field(None, ge=PORT_MIN, le=PORT_MAX)
    host: str = "127.0.0.1"  # where the service listens; the endpoint other nodes forward to
    probe: Literal["none", "tcp", "http"] = "none"
    http_path: str = Field("/", pattern=r"^/")

    @model_validator(mode="after")
    def _probe_needs_port(self) -> ProcessParams:
        if not self.argv[0]:
            raise ValueError("argv[0] is empty")
        if self.probe != "none" and self.port is None:
            raise ValueError(f"probe {self.probe!r} needs a port")
        for name, path in self.env_files.items():
            if not name or "=" in name:
                raise ValueError(f"env_files: {name[:64]!r} is not an environment variable name")
            if not path.startswith("/"):
                raise ValueError(f"env_files.{name[:64]}: {path[:64]!r} is not an absolute path")
            if name in self.env:
                raise ValueError(f"{name[:64]} is set both in env and in env_files")
        return self


class RayActorParams(_Params):
    """A named Ray actor `<group>/<resource>` (namespace `roster`) on the owner's Ray node.
    Health: `health_method()` answers within the spec's `health.timeout_ms`; with no method,
    the actor being alive (a no-op call answering) is the check."""

    cls: str = Field(pattern=CLASS_PATH_PATTERN)  # "module:Class"
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = Field(default_factory=dict)
    num_cpus: float = Field(0.0, ge=0)
    resources: dict[str, float] = Field(default_factory=dict)
    health_method: str | None = Field(None, pattern=METHOD_NAME_PATTERN)
    detached: bool = True  # outlives the node actor's process: the host kills it, Ray does not


TYPE_PARAMS: dict[str, type[_Params]] = {"process": ProcessParams, "ray_actor": RayActorParams}
# Params added after specs were first logged, left out of the normalised params while empty:
# a spec that does not use one keeps the bytes (and hashes) it always had.
PARAMS_OMITTED_WHEN_EMPTY = frozenset({"env_files"})


def _one_line(exc: ValidationError, prefix: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    where = f"{prefix}.{loc}" if loc else prefix
    text = f"{where}: {msg}"
    more = exc.error_count() - 1
    if more:
        text += f" (and {more} more)"
    return text[:ERROR_MAX_CHARS]


def params_of(spec: ResourceSpec) -> _Params:
    """The typed params of a spec already validated (`validate_resource`)."""
    return TYPE_PARAMS[spec.type].model_validate(spec.params)


def validate_resource(spec: ResourceSpec, group: str | None = None) -> ResourceSpec | str:
    """The spec with its params normalised by its type's model, or one line naming the problem."""
    where = f"group {group!r} resource {spec.name!r}" if group else f"resource {spec.name!r}"
    model = TYPE_PARAMS.get(spec.type)
    if model is None:
        return f"{where}: unknown type {spec.type!r} (one of: {', '.join(sorted(TYPE_PARAMS))})"
    try:
        params = model.model_validate(spec.params)
    except ValidationError as exc:
        return _one_line(exc, f"{where}: params")
    normal = {k: v for k, v in params.model_dump(mode="json").items()
              if not (k in PARAMS_OMITTED_WHEN_EMPTY and not v)}
    return spec.model_copy(update={"params": normal})


def resource_from_dict(raw: Mapping[str, Any], group: str | None = None) -> ResourceSpec | str:
    """A spec from plain data (an admin command's args), fully validated, or one error line."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    where = f"group {group!r} resource {name!r}" if group else f"resource {name!r}"
    try:
        spec = ResourceSpec.model_validate(raw)
    except ValidationError as exc:
        return _one_line(exc, where)
    return validate_resource(spec, group)


def validate_group(resources: Iterable[ResourceSpec], group: str | None = None) -> tuple[ResourceSpec, ...] | str:
    """Every resource valid, names unique, every dependency a resource of the same group,
    no cycle. Returns the normalised specs in declaration order, or one error line."""
    where = f"group {group!r}" if group else "group"
    out: list[ResourceSpec] = []
    seen: set[str] = set()
    for spec in resources:
        checked = validate_resource(spec, group)
        if isinstance(checked, str):
            return checked
        if spec.name in seen:
            return f"{where}: resource {spec.name!r} is declared twice"
        seen.add(spec.name)
        out.append(checked)
    if len(out) > MAX_RESOURCES_PER_GROUP:
        return f"{where}: {len(out)} resources (at most {MAX_RESOURCES_PER_GROUP})"
    for spec in out:
        for dep in spec.depends_on:
            if dep == spec.name:
                return f"{where}: resource {spec.name!r} depends on itself"
            if dep not in seen:
                return f"{where}: resource {spec.name!r} depends on unknown resource {dep!r}"
    cycle = _find_cycle(out)
    if cycle:
        return f"{where}: dependency cycle {' -> '.join(cycle)}"
    return tuple(out)


def _find_cycle(specs: Sequence[ResourceSpec]) -> list[str]:
    """One cycle as a path a -> b -> ... -> a, or [] (iterative DFS, declaration order)."""
    deps = {s.name: s.depends_on for s in specs}
    colour: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in deps:
        if colour.get(root):
            continue
        path: list[str] = [root]
        stack: list[Iterable[str]] = [iter(deps[root])]
        colour[root] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                stack.pop()
            elif colour.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append(iter(deps[nxt]))
    return []


def start_order(resources: Sequence[ResourceSpec]) -> tuple[ResourceSpec, ...]:
    """Dependencies first; among the resources ready to start, the one declared first.
    The resources must have passed `validate_group` (no cycle, no unknown dependency)."""
    pending = list(resources)
    started: set[str] = set()
    out: list[ResourceSpec] = []
    while pending:
        ready = next((s for s in pending if all(d in started for d in s.depends_on)), None)
        if ready is None:
            raise ValueError("start_order needs resources without a dependency cycle (validate_group first)")
        pending.remove(ready)
        started.add(ready.name)
        out.append(ready)
    return tuple(out)


def stop_order(resources: Sequence[ResourceSpec]) -> tuple[ResourceSpec, ...]:
    return tuple(reversed(start_order(resources)))
