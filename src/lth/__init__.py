"""Lottery Ticket Hypothesis (Frankle & Carbin, 2019) on MNIST: the library behind the workflow.

Every stage of the Snakemake workflow is a plain function here, so that tests (and users in a
notebook) can call it without Snakemake. Modules:

- ``config``: typed hyperparameters and the one-line config checks.
- ``data``: MNIST files, checksums, fetching, IDX parsing, the train/val/test split.
- ``models``: the networks, their initialisation, which layer is the output layer.
- ``pruning``: masks and the pruning strategies (magnitude, random; layer-wise or global).
- ``training``: the training loop with masks, evaluation and early-stop bookkeeping.
- ``checkpoint``: atomic, validated files for weights and masks.
- ``aggregate`` and ``plots``: the tables and figures.
"""

__version__ = "0.1.0"
