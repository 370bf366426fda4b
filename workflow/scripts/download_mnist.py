"""Fetch MNIST (mirrors or a local folder), verify it, write the four IDX files."""

from pathlib import Path

from lth.data import fetch_mnist
from lth.fileio import write_json
from lth.jobs import run_job


def main(log):
    out = snakemake.output  # noqa: F821
    dest = Path(out.files[0]).parent
    if not snakemake.params.verify:  # noqa: F821
        log("warning: verify_data is false: the data is NOT checked against the MNIST checksums")
    checksums = fetch_mnist(dest, source=snakemake.params.source, verify_checksums=snakemake.params.verify, log=log)  # noqa: F821
    write_json(out.checksums, {"sha256": checksums, "verified": snakemake.params.verify,  # noqa: F821
                               "source": snakemake.params.source or "mirrors"})  # noqa: F821


run_job(main, snakemake.log[0])  # noqa: F821
