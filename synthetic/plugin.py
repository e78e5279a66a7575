"""The pytest plugin's entry point: options, markers, hook specs, and the
decision whether this pytest run is a synthetic run at all.

pytest loads this module in every run of every project in the environment
(the ``pytest11`` entry point), so it imports almost nothing. The run's hooks
(`synthetic.run_plugin`) are registered only when synthetic is in use:

- a config file is found: ``--synthetic-config``/``SYNTHETIC_CONFIG``, else
  the nearest ``synthetic.toml`` or ``pyproject.toml`` with ``[tool.synthetic]``
  from the directory pytest was started in;
- or one of synthetic's options is set (on the command line, in the
  environment, in the ini file), as the ``synthetic`` command always does.

Otherwise a check function (one with a ``metric`` marker) that pytest collects
gets one warning saying why it runs as a plain test.
"""

from __future__ import annotations

import os
import warnings

import pytest

from synthetic import hookspecs
from synthetic.markers import MARKER_DOCS
from synthetic.options import OPTIONS, find_config_file

_ACTIVE_KEY = pytest.StashKey[bool]()


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)
    _not_rewritten(pluginmanager)


def _not_rewritten(pluginmanager: pytest.PytestPluginManager) -> None:
    """The framework's modules are imported as Python imports them, not through
    pytest's assertion rewriting (which pytest applies to every module of a
    plugin's package): its asserts are invariants, not a check's test, and
    rewriting costs each import a pass over the module, on every run where the
    cache cannot be written. The check modules and conftests are rewritten as
    before. ``_must_rewrite`` is the set pytest's own ``register_assert_rewrite``
    adds to, not a documented API: if it is gone, nothing changes but the cost."""
    must_rewrite = getattr(getattr(pluginmanager, "rewrite_hook", None), "_must_rewrite", None)
    if isinstance(must_rewrite, set):
        must_rewrite.discard(__name__.partition(".")[0])


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("synthetic", "synthetic monitoring")
    for opt in OPTIONS:
        group.addoption(
            *opt.flags, dest=opt.dest, default=None, choices=opt.choices, help=opt.described
        )
        parser.addini(opt.ini, help=opt.help, default=None)
    group.addoption(
        "--synthetic-default-checks",
        action="store_true",
        default=False,
        help="collect the config's `checks` unless a path is given; the paths given that "
        "are `checks` directories do not count (the synthetic command sets this).",
    )


def in_use(config: pytest.Config) -> bool:
    """Whether this pytest run is a synthetic run (see the module's docstring)."""
    if hasattr(config, "workerinput"):  # an xdist worker of a synthetic run
        return "synthetic_run_id" in config.workerinput
    if config.getoption("synthetic_default_checks"):
        return True
    for opt in OPTIONS:
        if config.getoption(opt.dest) is not None or os.environ.get(opt.envvar):
            return True
        if config.getini(opt.ini):
            return True
    return find_config_file(config.invocation_params.dir.resolve()) is not None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # trylast: the run's plugin registers its Allure masker after allure-pytest.
    for doc in MARKER_DOCS.values():
        config.addinivalue_line("markers", doc)
    active = in_use(config)
    config.stash[_ACTIVE_KEY] = active
    if active:
        from synthetic import run_plugin

        config.pluginmanager.register(run_plugin, "synthetic-run")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.stash.get(_ACTIVE_KEY, True):
        return
    if any(item.get_closest_marker("metric") is not None for item in items):
        warnings.warn(
            pytest.PytestConfigWarning(
                "synthetic: checks collected but synthetic is not in use here (no synthetic.toml "
                "or [tool.synthetic] found from this directory, no --env/--config given): "
                "they run as plain tests, without thresholds or results"
            ),
            stacklevel=1,
        )
