"""One notebook executed headlessly: papermill runs a jupytext ``py:percent`` file in a named kernel
and the executed copy is written beside the source as its jupytext pair (:func:`paired_copy`).
:mod:`paperkit.orchestration.runner` runs a profile's notebooks through :func:`execute`.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from paperkit.artifacts import write_text

if TYPE_CHECKING:
    from nbformat import NotebookNode
    from traitlets.config import Config


class NotebookFailed(RuntimeError):
    """A notebook raised; the message names the notebook, the cell and where its executed copy is."""


def kernel_name() -> str:
    """The ``paperkit`` kernel installed by the setup script, else the current interpreter's ``python3``."""
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    return "paperkit" if "paperkit" in specs else "python3"


def kernelspec(kernel: str) -> dict[str, str]:
    """The notebook metadata that names ``kernel``, so JupyterLab opens the executed copy with it
    instead of asking "Select Kernel"."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(kernel)
        return {"name": kernel, "display_name": spec.display_name, "language": spec.language}
    except NoSuchKernel:  # papermill will say so when it starts the kernel
        return {"name": kernel, "display_name": kernel, "language": "python"}


def kernel_manager_config() -> "Config":
    """Settings of the kernel manager papermill starts each kernel with.

    CurveZMQ encryption of the kernel's sockets, for kernelspecs that declare support (ipykernel
    writes it into its own): ipykernel 7.4 otherwise prints "Kernel is running over TCP without
    encryption" to the runner's output for every notebook. Left at jupyter_client's default where
    pyzmq lacks CurveZMQ (asking for it there fails) or jupyter_client predates the setting.
    """
    import zmq
    from jupyter_client.manager import KernelManager
    from traitlets.config import Config

    if zmq.has("curve") and "transport_encryption" in KernelManager.class_trait_names():
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config()


#: Cells papermill adds to the executed copy: the parameters it injects and, after a failure, the
#: red "An Exception was encountered" banner and its anchor. None of them is in the source.
PAPERMILL_TAGS = {"injected-parameters", "papermill-error-cell-tag"}


def paired_copy(source: "NotebookNode", executed: "NotebookNode") -> "NotebookNode":
    """The source notebook with the executed copy's outputs: what jupytext pairs with the ``.py``.

    jupytext opens ``NN.py`` with the outputs of ``NN.ipynb``, but refuses (HTTP 400) when the
    ``.ipynb`` is newer than the ``.py`` and their inputs differ: it cannot tell a run's copy from
    edits made in the ``.ipynb``. So the copy keeps the source's cells and metadata exactly (its
    kernelspec header included) and takes only outputs, execution counts and the kernel's language
    info (which the text never holds) from the run; the cells papermill adds (:data:`PAPERMILL_TAGS`)
    are left out (the setup cell's output names the profile that ran; a failed cell keeps its
    traceback).
    """
    paired = copy.deepcopy(source)
    ran = [c for c in executed.cells if not set(c.get("metadata", {}).get("tags", [])) & PAPERMILL_TAGS]
    if [c.source for c in ran] != [c.source for c in paired.cells]:
        raise ValueError("the executed notebook's cells do not match its source's; not pairing outputs")
    for cell, done in zip(paired.cells, ran):
        if cell.cell_type == "code":
            cell.outputs = done.get("outputs", [])
            cell.execution_count = done.get("execution_count")
    if "language_info" in executed.metadata:
        paired.metadata["language_info"] = executed.metadata["language_info"]
    return paired


def execute(
    notebook: Path,
    output: Path,
    parameters: Mapping[str, Any],
    kernel: str,
    progress: bool = False,
) -> None:
    """Execute one jupytext notebook with papermill; raise :class:`NotebookFailed` naming the failing cell."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    output.parent.mkdir(parents=True, exist_ok=True)
    source = jupytext.read(notebook)
    node = copy.deepcopy(source)
    node.metadata["kernelspec"] = kernelspec(kernel)
    try:
        papermill.execute_notebook(
            node,
            str(output),
            parameters=dict(parameters),
            kernel_name=kernel,
            language="python",
            cwd=str(notebook.parent),
            progress_bar=progress,
            log_output=False,
            config=kernel_manager_config(),
        )
    except PapermillExecutionError as err:
        raise NotebookFailed(
            f"{notebook.name} failed in cell {err.cell_index} (execution count {err.exec_count}): "
            f"{err.ename}: {err.evalue}\n  executed copy with the traceback: {output}"
        ) from None
    finally:  # a failed run's outputs (its traceback) belong beside the source too
        if output.is_file():
            write_paired(notebook, source, output)


def write_paired(notebook: Path, source: "NotebookNode", output: Path) -> None:
    """Write ``notebook``'s ``.ipynb`` pair from the executed copy ``output`` (atomically).

    A pair that cannot be written (a read-only checkout) costs the reader the outputs beside the
    source, not the run: it says so and goes on; the executed copy is in ``output`` regardless.
    """
    import nbformat

    target = notebook.with_suffix(".ipynb")
    try:
        write_text(target, nbformat.writes(paired_copy(source, nbformat.read(output, as_version=4))) + "\n")
    except (OSError, ValueError) as err:
        print(f"warning: {target} not written ({err}); the executed notebook is {output}", file=sys.stderr)
