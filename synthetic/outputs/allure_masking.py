"""Masking secrets in what allure-pytest writes.

allure-pytest records some failures itself (a fixture's setup or teardown,
through its own finalizer wrappers) before pytest makes a report, so
masking the report is not enough. allure-commons hands every result and
container to its plugins' ``report_result`` / ``report_container`` hooks,
the file writer among them; this plugin, registered after the writer, is
called before it and masks the objects in place.
"""

from __future__ import annotations

from typing import Any

import allure_commons

from synthetic.redact import Masker


class AllureMasker:
    def __init__(self, masker: Masker) -> None:
        self.masker = masker

    @allure_commons.hookimpl
    def report_result(self, result: Any) -> None:
        _mask_in_place(result, self.masker, depth=0)

    @allure_commons.hookimpl
    def report_container(self, container: Any) -> None:
        _mask_in_place(container, self.masker, depth=0)


def _mask_in_place(obj: Any, masker: Masker, *, depth: int) -> Any:
    if depth > 30:
        return obj
    if isinstance(obj, str):
        return masker.text(obj)
    if isinstance(obj, list):
        obj[:] = [_mask_in_place(item, masker, depth=depth + 1) for item in obj]
        return obj
    if isinstance(obj, dict):
        for key, value in obj.items():
            obj[key] = _mask_in_place(value, masker, depth=depth + 1)
        return obj
    fields = getattr(obj, "__dict__", None)
    if fields is not None:
        for name, value in list(fields.items()):
            setattr(obj, name, _mask_in_place(value, masker, depth=depth + 1))
    return obj


def register(masker: Masker) -> AllureMasker | None:
    """Register the masker with allure-commons, if allure-pytest is writing results."""
    plugin = AllureMasker(masker)
    allure_commons.plugin_manager.register(plugin)
    return plugin


def unregister(plugin: AllureMasker) -> None:
    allure_commons.plugin_manager.unregister(plugin)
