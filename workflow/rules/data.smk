from lth.data import FILE_NAMES as MNIST_NAMES  # the four IDX files, as lth.data verifies them


rule download_mnist:
    output:
        files=[f"resources/mnist/{name}" for name in MNIST_NAMES],
        checksums="resources/mnist/checksums.json",
    log:
        "logs/download_mnist.log",
    localrule: True
    conda:
        CONDA_ENV
    threads: 1
    resources:
        mem_mb=1000,
        runtime=15,
    params:
        code=script_code("download_mnist.py"),
        source=config["data_source"],
        verify=config["verify_data"],
    script:
        "../scripts/download_mnist.py"


# Training reads the data through ancient(): a re-download (same verified bytes, new mtimes)
# must not rerun the whole grid.
MNIST = ancient(rules.download_mnist.output.files)
