"""Execute a notebook headless: the one executor of every harness's notebooks.

Parameters are injected papermill-style: a cell tagged ``injected-parameters`` is inserted after
the cell tagged ``parameters``. The kernel is pinned to this interpreter (``sys.executable``): a
kernelspec for it is written to a temporary directory at run time, so a user-level ``python3``
kernelspec pointing at another Python cannot hijack the run. The notebook runs with the repository
root as its working directory and is executed in memory; the caller writes the executed copy.

Used by the figure notebooks (experiments/face_expression/figure_notebooks.py, ``make figures``) and
the TTC notebook (experiments/ttc/notebook.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def inject_parameters(nb, parameters: dict) -> None:
    """Insert a cell assigning ``parameters`` right after the cell tagged ``parameters``."""
    import nbformat

    index = next((k for k, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    source = "# Injected parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)


def kernel_manager(directory: str | Path):
    """A KernelManager whose kernel is ``sys.executable -m ipykernel_launcher`` (spec written to ``directory``)."""
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    name = "dynamic-mtl-python"
    write_kernel_spec(str(Path(directory) / name))
    specs = KernelSpecManager(kernel_dirs=[str(directory)], ensure_native_kernel=False)
    return KernelManager(kernel_name=name, kernel_spec_manager=specs)


def execute(notebook: str | Path, parameters: dict, timeout: int | None = None):
    """Executes ``notebook`` with ``parameters`` in memory; returns the executed NotebookNode."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(str(notebook), as_version=4)
    inject_parameters(nb, parameters)
    with tempfile.TemporaryDirectory(prefix="dynamic-mtl-kernel-") as tmp:
        km = kernel_manager(tmp)
        try:
            NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(REPO_ROOT)}}).execute()
        finally:
            if km.has_kernel:
                km.shutdown_kernel(now=True)
    return nb
