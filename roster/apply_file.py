"""The declarative file of `roster apply FILE`: groups and their resources, in TOML.

    [groups.web]
    preferred_owners = ["n1", "n2"]
    failover = { threshold = 3, period_ms = 3600000 }

    [[groups.web.resources]]
    name = "app"
    type = "process"
    params = { argv = ["python3", "examples/whoami.py", "8080"], port = 8080, probe = "http" }

`load_apply_file(path)` returns the desired groups (name -> `DesiredGroup`), or raises
`ApplyFileError` with one line naming the file, the TOML path of the field and its line
(where one can be found): a syntax error, an unknown field or type, a missing field, an
unknown dependency, a dependency cycle, a command that does not exist on this host
(argv[0] neither on PATH nor a file). Nothing is sent before the whole file is valid.

    python -m roster.apply_file FILE   # check a file: the desired groups as JSON, or one error line
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from actors.admin import NAME_PATTERN
from events.resource_spec import FailoverPolicy, ResourceSpec
from actors.resource_types import TYPE_PARAMS, ProcessParams, params_of, validate_group
from events import codec

APPLY_FILE_MAX_BYTES = 1024 * 1024  # a cluster's groups, not a data set
_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


class ApplyFileError(ValueError):
    """One line: file, where, what."""


class DesiredGroup(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    preferred_owners: tuple[str, ...] = ()
    failback: bool = False
    failover: FailoverPolicy = FailoverPolicy()
    resources: tuple[ResourceSpec, ...] = ()

    def as_args(self) -> dict[str, Any]:
        """Plain data for an admin command (JSON-safe)."""
        return self.model_dump(mode="json")


class ApplyDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")

    groups: dict[str, DesiredGroup] = Field(default_factory=dict)


def _path_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The line that best matches a TOML path (tomllib keeps no positions): the key's own
    line if it is written there, else the header of the innermost table that holds it."""
    best: tuple[int, int] | None = None  # (matched length, line)
    table: list[Any] = []
    arrays: dict[tuple[Any, ...], int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            parts: list[Any] = [p.strip().strip("\"'") for p in header.group(2).split(".")]
            if header.group(1) == "[[":
                arrays[tuple(parts)] = arrays.get(tuple(parts), -1) + 1
                parts.append(arrays[tuple(parts)])
            table = _with_indices(parts, arrays)
            path: list[Any] = table
        else:
            key = _KEY.match(line)
            if not key:
                continue
            path = table + [k.strip("\"'") for k in key.group(1).split(".")]
        n = _common(path, loc)
        if n and n == len(path) and (best is None or n > best[0]):
            best = (n, lineno)
    return best[1] if best else None


def _with_indices(parts: list[Any], arrays: dict[tuple[Any, ...], int]) -> list[Any]:
    """`[groups.web.resources.params]` inside the 2nd `[[groups.web.resources]]` is resources[1].params."""
    out: list[Any] = []
    for i, p in enumerate(parts):
        out.append(p)
        prefix = tuple(parts[: i + 1])
        if not isinstance(p, int) and prefix in arrays and (i + 1 >= len(parts) or not isinstance(parts[i + 1], int)):
            out.append(arrays[prefix])
    return out


def _common(a: list[Any], b: tuple[Any, ...]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _where(path: Path, text: str, loc: tuple[Any, ...]) -> str:
    line = _line_of(text, loc)
    return f"{path}:{line}: {_path_text(loc)}" if line else f"{path}: {_path_text(loc)}"


def _command_problem(params: ProcessParams) -> str | None:
    cmd = params.argv[0]
    if "/" in cmd:
        full = Path(params.cwd or ".") / cmd if not os.path.isabs(cmd) else Path(cmd)
        if not full.is_file() or not os.access(full, os.X_OK):
            return f"command {cmd!r} is not an executable file"
        return None
    search = params.env.get("PATH", os.environ.get("PATH", os.defpath))
    if shutil.which(cmd, path=search) is None:
        return f"command {cmd!r} is not on PATH"
    return None


def _check_params(path: Path, text: str, loc: tuple[Any, ...], spec: ResourceSpec) -> None:
    """The type and its params, with the TOML path of the field at fault."""
    model = TYPE_PARAMS.get(spec.type)
    if model is None:
        known = ", ".join(sorted(TYPE_PARAMS))
        raise ApplyFileError(f"{_where(path, text, loc + ('type',))}: unknown type {spec.type!r} (one of: {known})")
    try:
        model.model_validate(spec.params)
    except ValidationError as exc:
        err = exc.errors()[0]
        msg = err["msg"].removeprefix("Value error, ")
        raise ApplyFileError(f"{_where(path, text, loc + ('params', *err['loc']))}: {msg}") from None


def _check_groups(path: Path, text: str, doc: ApplyDoc) -> dict[str, DesiredGroup]:
    out: dict[str, DesiredGroup] = {}
    for name, group in doc.groups.items():
        if not NAME_PATTERN.match(name):
            raise ApplyFileError(f"{_where(path, text, ('groups', name))}: {name!r} is not a group name")
        for i, spec in enumerate(group.resources):
            _check_params(path, text, ("groups", name, "resources", i), spec)
        checked = validate_group(group.resources, name)
        if isinstance(checked, str):
            raise ApplyFileError(f"{_where(path, text, ('groups', name, 'resources'))}: {checked}")
        for i, spec in enumerate(checked):
            if spec.type == "process":
                problem = _command_problem(params_of(spec))  # type: ignore[arg-type]
                if problem:
                    loc = ("groups", name, "resources", i, "params", "argv")
                    raise ApplyFileError(f"{_where(path, text, loc)}: group {name!r} resource {spec.name!r}: {problem}")
        out[name] = group.model_copy(update={"resources": checked})
    return out


def load_apply_file(path: str | os.PathLike[str]) -> dict[str, DesiredGroup]:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ApplyFileError(f"{p}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > APPLY_FILE_MAX_BYTES:
        raise ApplyFileError(f"{p}: {len(raw)} bytes (at most {APPLY_FILE_MAX_BYTES})")
    try:
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError:
        raise ApplyFileError(f"{p}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:  # its message ends "(at line L, column C)"
        raise ApplyFileError(f"{p}: TOML syntax: {exc}") from None
    try:
        doc = ApplyDoc.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise ApplyFileError(f"{_where(p, text, tuple(err['loc']))}: {msg}{more}") from None
    return _check_groups(p, text, doc)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m roster.apply_file FILE", file=sys.stderr)
        return 2
    try:
        groups = load_apply_file(argv[1])
    except ApplyFileError as exc:
        print(f"roster apply: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(codec.dumps({n: g.as_args() for n, g in groups.items()}, indent=True).decode() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
