"""Jinja rendering of launch scripts: one environment, one quoting filter for every shell value."""

from __future__ import annotations

import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


def shell_quote(value: Any) -> str:
    """The only way a recipe value reaches a shell script: one POSIX-quoted word."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    return shlex.quote(str(value))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["q"] = shell_quote
    return env


def render(template: str, **values: Any) -> str:
    """Render templates/<template>; values are plain data computed in Python, quoted in the template with `| q`."""
    return environment().get_template(template).render(**values)
