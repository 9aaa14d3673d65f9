"""The report as a reader gets it: notebook 03's outputs as one self-contained HTML page.

Two halves, one module, so the page and the notebook agree on how a figure looks:

* for the notebook: :func:`figure` (a registry figure as ``<figure>`` with its caption, the
  PNG inlined so the page opens offline) and :func:`side_by_side` (tables next to each other);
* for the pipeline: :func:`render_report` - the executed notebook 03 without its code, its
  prompts or anything but its outputs and markdown, headed by a banner with the run's status
  read from ``metadata.json`` *at render time* (the notebook ran while the run was still
  ``running``) and relative links to the executed notebooks and data files beside it.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path

import jinja2
import nbformat
import pandas as pd

from servebench import plots

REPORT_NOTEBOOK = "03_report.ipynb"
#: Files of the run directory the banner links to when present (relative links).
DATA_FILES = (
    "summary.csv", "per_config.csv", "ratios.csv", "points.csv", "metadata.json", "config.yaml",
)  # fmt: skip
#: A figure shows at its own size (saved at 120 dpi, its text is sized for that), shrunk
#: only to the page's width: a fixed cap shrank the widest figures' text to half.
FIGURE_STYLE = "margin:1em 0;max-width:100%"
IMAGE_STYLE = "max-width:100%;height:auto;display:block"
CAPTION_STYLE = "font-style:italic;color:#444;margin-top:.3em"
SIDE_BY_SIDE = "servebench-side-by-side"
TEMPLATE = "servebench-report.html.j2"
#: JupyterLab's template draws a markdown cell inside an input area (.jp-InputArea), as if
#: it were code; a report's prose is text, so it is drawn as a rendered output instead.
MARKDOWN_AS_TEXT = """{%- extends 'lab/index.html.j2' -%}
{% block markdowncell scoped %}
<div class="jp-Cell jp-MarkdownCell jp-Notebook-cell">
<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput"
     data-mime-type="text/markdown">
{{ cell.source | markdown2html | strip_files_prefix }}
</div>
</div>
{%- endblock markdowncell %}
"""
BANNER_STYLE = (
    "font-family:sans-serif;font-size:14px;padding:8px 16px;background:#eef3f8;"
    "border-bottom:1px solid #c9d6e3"
)


def figure_html(png: Path, caption: str) -> str:
    """A PNG inlined as a data URI inside ``<figure>`` with its ``<figcaption>``."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (
        f'<figure style="{FIGURE_STYLE}">'
        f'<img src="data:image/png;base64,{data}" alt="{html.escape(png.stem)}" '
        f'style="{IMAGE_STYLE}">'
        f'<figcaption style="{CAPTION_STYLE}">{html.escape(caption)}</figcaption></figure>'
    )


def figure(made: dict[str, Path | None], name: str) -> str:
    """Registry figure ``name`` (from :func:`servebench.plots.make_figures`'s result) as
    HTML with its registry caption, or a sentence saying why it was skipped."""
    path = made.get(name)
    if path is None:
        return f"<p><em>{name}: skipped (its optional input is missing; see the notes).</em></p>"
    return figure_html(path, plots.FIGURES[name].caption)


def side_by_side(
    tables: Sequence[tuple[str, pd.DataFrame]], element_id: str = "", index: bool = True
) -> str:
    """Titled tables in one row (never wrapped below each other, so what follows stays
    where the reader expects it: the tables narrow to the page, and only what cannot
    narrow further scrolls sideways); ``index`` False leaves out the frames' index (a
    table whose columns say everything). One table alone is the report's way to print
    any table: each module's ``*_shown`` function heads it in words."""
    cells = "".join(
        f'<div style="flex:0 1 auto;min-width:0"><p><strong>{html.escape(title)}</strong></p>'
        f"{frame.to_html(border=0, classes='dataframe', na_rep='', index=index)}</div>"
        for title, frame in tables
    )
    ident = f' id="{element_id}"' if element_id else ""
    # Long column names wrap rather than widen the row past the page, and so do cells with
    # words in them (a label, a ratio beside its interval): a table narrows to the page
    # before it needs a scroll bar. Numbers have no space to break at and stay whole.
    row = f".{SIDE_BY_SIDE}"
    style = (
        f"<style>{row} {{font-size:12px}} {row} thead th {{white-space:normal;max-width:7em}} "
        f"{row} tbody th, {row} td {{white-space:normal}} "
        f"{row} td, {row} th {{padding:2px 5px}}</style>"
    )
    return (
        f'{style}<div{ident} class="{SIDE_BY_SIDE}" '
        'style="display:flex;gap:1.5em;align-items:flex-start;overflow-x:auto">'
        f"{cells}</div>"
    )


def banner(run_dir: Path, executed: Sequence[Path]) -> str:
    """The run's identity and *current* status (metadata.json now), with relative links."""
    meta = json.loads((run_dir / "metadata.json").read_text())
    status = str(meta.get("status", "unknown"))
    esc = html.escape
    parts = [
        f"<strong>Run</strong> <code>{esc(str(meta.get('run_id', run_dir.name)))}</code>",
        f'status <strong id="run-status" data-status="{esc(status)}">{esc(status)}</strong>',
        f"started {esc(str(meta.get('started', '?')))}",
        f"finished {esc(str(meta.get('finished', '?')))}",
    ]
    notebooks = [p for p in executed if p.is_file()]
    if notebooks:
        links = ", ".join(
            f'<a href="{esc(p.relative_to(run_dir).as_posix())}">{esc(p.stem)}</a>'
            for p in notebooks
        )
        parts.append(f"executed notebooks: {links}")
    files = [f'<a href="{n}">{n}</a>' for n in DATA_FILES if (run_dir / n).is_file()]
    if files:
        parts.append(f"data: {', '.join(files)}")
    return f'<div id="run-banner" style="{BANNER_STYLE}">{" · ".join(parts)}</div>'


def render_report(run_dir: Path, executed: Sequence[Path]) -> Path:
    """report.html from the executed notebook 03 of ``executed``: outputs and markdown only
    (no code, no prompts), headed by :func:`banner`. Returns the report's path."""
    from nbconvert import HTMLExporter

    report_nb = next(p for p in executed if p.name == REPORT_NOTEBOOK)
    notebook = nbformat.read(report_nb, as_version=4)
    # A code cell without output (parameters, imports) would leave an empty box on the page.
    notebook.cells = [c for c in notebook.cells if c.cell_type == "markdown" or c.get("outputs")]
    exporter = HTMLExporter(
        template_name="lab",
        template_file=TEMPLATE,
        extra_loaders=[jinja2.DictLoader({TEMPLATE: MARKDOWN_AS_TEXT})],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    resources = {"metadata": {"name": "Rust vs Python: an ML web service (report)"}}
    body, _ = exporter.from_notebook_node(notebook, resources=resources)
    # The banner goes first in <body>, so the status is the first thing read.
    body = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + banner(run_dir, executed), body, count=1)
    target = run_dir / "report.html"
    target.write_text(body)
    return target


#: The parameters that size the measurement (the method section's "budgets").
BUDGETS = (
    "n_requests", "concurrency", "concurrency_levels", "payloads", "min_rounds",
    "max_rounds", "target_ci_pct", "point_budget_s", "burst_s", "burst_min_per_client",
    "warmup_requests", "stage_requests", "ceiling_warmup", "openloop_bound_ms",
    "openloop_duration_s", "soak_s", "soak_concurrency", "unstable_pct",
)  # fmt: skip


def budgets(parameters: dict[str, object]) -> pd.DataFrame:
    """The run's measurement budgets (those of :data:`BUDGETS` it has) as a small table."""
    values = {k: str(parameters[k]) for k in BUDGETS if k in parameters}
    return pd.DataFrame({"value": list(values.values())}, index=pd.Index(values, name="budget"))
