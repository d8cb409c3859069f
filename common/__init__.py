"""Stage 0: what every stage uses and nothing of the project's own.

- ``common.runtime``: device, precision, torch threads, seeding, version stamps;
- ``common.io``: atomic writes and the data root;
- ``common.runs``: the run folder (layout, file names, CSV columns, the run config) that ``suites`` writes
  and ``analysis`` reads.

It imports no other package of the project, so any of them may import it (tests/test_architecture.py).
"""
