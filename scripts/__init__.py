"""One-off measurement scripts, run from the repository root as ``python -m scripts.<name> ...``.

Not a stage and not installed (``[tool.setuptools.packages.find]`` leaves it out): a script may import any
stage, no stage may import a script (tests/test_architecture.py checks both). Each script's docstring says
what it measures and which doc records its output.
"""
