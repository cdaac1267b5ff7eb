"""A flow that takes a file and writes one: `ctx.files` in, `ctx.save_file` out.

    koco run summarize-file -f document=@./notes.md

The input is read from a read-only local path inside the executor (fetched from the node
on whatever host of the Ray cluster the executor runs); the summary is stored on the node
as a file of the execution (`koco files ID`, `koco download ID summary.md`).
"""

from __future__ import annotations

import csv
import io

from engine import FlowContext, Markdown

SAMPLE = """# A sample document

Given no file, the flow summarizes this text.
Launch it with a file of your own: koco run summarize-file -f document=@./notes.md
"""


def summarize_file(ctx: FlowContext, document: str = "document", lines: int = 5) -> Markdown:
    """Summarize the input file named `document` (text, markdown or CSV) into summary.md."""
    if document in ctx.files:
        path = ctx.files[document]
        info = ctx.files.info(document)
        text = path.read_text(errors="replace")
        source = f"{info.file_name or info.name} ({info.size} bytes)"
    else:
        text, source = SAMPLE, "the built-in sample"
    ctx.progress(0.2, f"read {source}")
    body = [line.strip() for line in text.splitlines() if line.strip()]
    rows = ""
    if ctx.files.get(document) is not None and ctx.files.info(document).media_type == "text/csv":
        table = list(csv.reader(io.StringIO(text)))
        rows = f"- rows: {max(len(table) - 1, 0)}, columns: {len(table[0]) if table else 0}\n"
    summary = (
        f"# Summary of {source}\n\n"
        f"- lines: {len(text.splitlines())}, words: {len(text.split())}, "
        f"characters: {len(text)}\n{rows}\n"
        "## First lines\n\n" + "\n".join(f"> {line}" for line in body[: max(lines, 0)]) + "\n"
    )
    saved = ctx.save_file("summary.md", summary, "text/markdown")
    ctx.progress(1.0, f"wrote summary.md ({saved.size} bytes)")
    return Markdown(summary)
