"""``synthetic generate``: the catalogue as the monitoring guide's artifacts.

Pure functions from a `Catalogue` (the checks as collected for one
environment, with the config's overrides, and the ``[alerts]`` routes) to
files, one module per target. The command (`synthetic.generate.command`)
collects the catalogue, writes the files or compares them (``--check``).
"""
