"""Figures drawn off-screen, for every pillar's plots.

Plots are made with matplotlib's object-oriented API (:class:`matplotlib.figure.Figure`), not
with ``pyplot``: a library call must not switch the user's backend (``matplotlib.use``) or
leave figures in pyplot's registry, and a figure saved to a file needs neither. matplotlib is
the optional ``plot`` extra; without it, the call that needs a figure says which extra to
install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trustlab.core.errors import ConfigurationError
from trustlab.core.typing import PathLike

__all__ = ["MSG_NO_MATPLOTLIB", "has_matplotlib", "new_figure", "save_figure"]

MSG_NO_MATPLOTLIB = "{what} needs matplotlib: pip install 'trustlab[plot]'."


class MissingPlotExtra(ConfigurationError, ImportError):
    """matplotlib is not installed (an ImportError and a ConfigurationError)."""


def has_matplotlib() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return False
    return True


def new_figure(*, what: str, **options: Any) -> Any:
    """A new :class:`matplotlib.figure.Figure` outside pyplot.

    ``options`` go to ``Figure`` (``figsize``, ``dpi``, ...); ``what`` names the caller in the
    error raised when matplotlib is missing.

    Raises
    ------
    MissingPlotExtra
        If matplotlib is not installed; the message names the ``plot`` extra.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MissingPlotExtra(MSG_NO_MATPLOTLIB.format(what=what)) from error
    return Figure(**options)


def save_figure(figure: Any, path: PathLike, **options: Any) -> Path:
    """Save ``figure`` to ``path`` (its suffix picks the format) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, **options)
    return path
