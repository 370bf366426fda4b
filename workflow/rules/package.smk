# Where this workflow's own `lth` package is, for the Snakefile and for every job: in `src/` beside
# the Snakefile, which is not the folder of workflow.basedir when this workflow is a module of
# another one (that is the other workflow's). From a git source (`github(...)`, `gitlab(...)`),
# the package as that source holds it at the module's commit, written out once under
# .snakemake/lth-module/<commit>/ of the run's working directory (docs/install.md, "Use it in your
# own workflow"). Included first, before anything imports lth.

import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.sourcecache import HostingProviderFile, LocalSourceFile

# This workflow's root folder as Snakemake reads it (this file is in workflow/rules/).
WORKFLOW_ROOT = workflow.current_basedir.join("../..")


def _export_package(root):
    """src/lth of the git source ``root`` at its commit, as a local folder holding `lth/` (the
    files' exact bytes: lth.experiment.code_version, which every result.json records, hashes them)."""
    if isinstance(root, HostingProviderFile) and hasattr(root, "hosted_repo"):
        # Snakemake's own clone of the repository, which already holds the module's ref (the
        # Snakefile was read from it)
        repo, ref, top = root.hosted_repo.repo, root.ref, root.path
    else:  # a URL, git+file:// (Snakemake 9.27.1 cannot include this layout's files from one), or
        # a Snakemake that reads github() files one by one, without a clone
        raise WorkflowError(
            f"this workflow reads its lth package from a local folder or a git repository, not from {root}: "
            "declare the module with a local clone, or with github(...)/gitlab(...) and a Snakemake "
            "that clones their repositories (9.27.1 does)"
        )
    commit = repo.commit(ref)
    folder = Path(".snakemake", "lth-module", commit.hexsha)
    if not (folder / "lth").is_dir():
        tmp = folder.with_name(f"{commit.hexsha}.tmp{os.getpid()}")
        package = commit.tree / os.path.normpath(os.path.join(top, "src", "lth"))
        for blob in package.traverse():
            if blob.type == "blob":
                target = tmp / "lth" / blob.path[len(package.path) + 1 :]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(blob.data_stream.read())
        try:
            tmp.rename(folder)  # atomic: a second process finds all of it or none
        except OSError:  # another process was first
            import shutil

            shutil.rmtree(tmp)
    return str(folder.resolve())


if isinstance(WORKFLOW_ROOT, LocalSourceFile):
    SRC = os.path.join(WORKFLOW_ROOT.get_path_or_uri(secret_free=False), "src")
    OWN_CONFIGFILE = os.path.join(WORKFLOW_ROOT.get_path_or_uri(secret_free=False), "config.yaml")
else:
    SRC = _export_package(WORKFLOW_ROOT)
    OWN_CONFIGFILE = workflow.source_path("../../config.yaml")  # a local copy from the source cache
LTH_PACKAGE = Path(SRC, "lth")  # what the code hashes read (common.smk, script_code)

# Importable here and in every job through PYTHONPATH (set, not required: no envvars), ahead of any
# installed lth: the jobs run the code that the code hashes are of.
sys.path.insert(0, SRC)
if SRC not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
    os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
if "lth" in sys.modules and Path(sys.modules["lth"].__file__).resolve().parent != LTH_PACKAGE.resolve():
    raise WorkflowError(
        f"the lth package is already imported from {Path(sys.modules['lth'].__file__).parent}, "
        f"not from this workflow's {LTH_PACKAGE}: one Snakemake run can use one copy of it"
    )
