"""Load YAML into pydantic models with errors that name the file, the line and the field.

PyYAML is imported only when a file is parsed: the contracts that import this module (the
registry, the settings) stay cheap to import for the pure cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from softplace.errors import ConfigError

if TYPE_CHECKING:
    import yaml

ModelT = TypeVar("ModelT", bound=BaseModel)
Loc = tuple[str | int, ...]


def _construct(node: yaml.Node, path: Loc, lines: dict[Loc, int], source: str) -> Any:
    import yaml

    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.safe_load(yaml.serialize(key_node))
            line = key_node.start_mark.line + 1
            if key in result:  # YAML says keys are unique; PyYAML would keep the last
                where = ".".join(str(p) for p in (*path, key))
                raise ConfigError(f"{source}:{line}: {where}: duplicate key, first set at "
                                  f"line {lines[(*path, key)]}")
            lines[(*path, key)] = line
            result[key] = _construct(value_node, (*path, key), lines, source)
            # the key's own line is the better pointer for a wrong value too
            lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines, source) for i, item in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def load_yaml_with_lines(text: str, source: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML text, returning the data and the line of every mapping key and item."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{line}: invalid YAML: {err}") from err
    lines: dict[Loc, int] = {}
    if node is None:
        return {}, lines
    return _construct(node, (), lines, source), lines


class LocatedValueError(ValueError):
    """A model validator's error about one place inside the model (``loc`` below it), so
    the message names that place's line, not the line the model starts on."""

    def __init__(self, message: str, loc: Loc) -> None:
        super().__init__(message)
        self.loc = loc


def line_of(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of the deepest part of ``loc`` present in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def format_validation_error(err: ValidationError, source: str, lines: dict[Loc, int]) -> str:
    messages = []
    for item in err.errors():
        loc = tuple(p for p in item["loc"])
        cause = item.get("ctx", {}).get("error")
        if isinstance(cause, LocatedValueError):
            loc = (*loc, *cause.loc)
        line = line_of(loc, lines)
        where = ".".join(str(p) for p in loc) or "<document>"
        position = f"{source}:{line}" if line is not None else source
        messages.append(f"{position}: {where}: {item['msg']}")
    return "\n".join(messages)


def load_model(model: type[ModelT], path: Path) -> ModelT:
    """Read ``path`` and validate it as ``model``; ConfigError names file, line and field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
    return parse_model(model, text, str(path))


def parse_model(model: type[ModelT], text: str, source: str) -> ModelT:
    data, lines = load_yaml_with_lines(text, source)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, lines)) from err
