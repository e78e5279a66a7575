"""Root conftest, shared by the framework's tests (tests/) and the checks (checks/).

Only what both need lives here; test-only setup is in tests/conftest.py, so
running the checks needs no test dependency.
"""

# pytester drives the plugin in-process in tests/; declared here because
# pytest_plugins is only honoured in the root conftest.
pytest_plugins = ["pytester"]
