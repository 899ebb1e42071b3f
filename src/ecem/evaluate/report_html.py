"""HTML building blocks of the evaluate stage's pages (the report and the human-evaluation sheet):
the autoescaped Jinja2 templates under `templates/`, tables as the templates' `table` macro
takes them, and images as PNG data URIs, so a page needs no file beside it.
"""

from __future__ import annotations

import base64
import io
import math
from typing import Any

import numpy as np
import pandas as pd


def render(template: str, **context: Any) -> str:
    """Render one of this package's HTML templates, every value HTML-escaped."""
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=PackageLoader("ecem.evaluate", "templates"),
                      autoescape=select_autoescape(["html", "j2"]), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    return env.get_template(template).render(**context)


def _show(value: Any, digits: int) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}g}" if isinstance(value, float) else value


def frame_view(df: pd.DataFrame, digits: int = 4) -> dict[str, Any]:
    """A DataFrame as the template's `table` macro takes it (floats rounded for reading)."""
    return {"columns": [str(c) for c in df.columns],
            "rows": [{str(k): _show(v, digits) for k, v in r.items()} for r in df.to_dict("records")]}


def _png_uri(buf: io.BytesIO) -> str:
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def png_data_uri(fig: Any) -> str:
    """A matplotlib figure as a PNG data URI (the figure is closed)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return _png_uri(buf)


def array_png_uri(img: np.ndarray) -> str:
    """An RGB image array as a PNG data URI."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return _png_uri(buf)
