"""Jinja2 rendering: packaged templates, overridden by files of the same name in the host's etc/supz/templates."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import jinja2

from supz.errors import ConfigError
from supz.paths import HostPaths
from supz.quoting import FILTERS


def packaged_templates() -> Path:
    return Path(str(importlib.resources.files("supz.templates")))


def environment(paths: HostPaths | None) -> jinja2.Environment:
    searchpath = [str(packaged_templates())]
    if paths is not None:
        searchpath.insert(0, str(paths.template_overrides))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(searchpath),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    # Templates quote what they interpolate: `{{ path | shquote }}`, `{{ dir | supervisor_value }}`.
    env.filters.update(FILTERS)
    return env


def render(name: str, paths: HostPaths | None, **values: Any) -> str:
    try:
        return environment(paths).get_template(name).render(paths=paths, **values)
    except jinja2.TemplateError as exc:
        raise ConfigError(f"template {name}: {exc}", thing=name) from exc
