"""A timeline as an SVG Gantt chart: one row per step, nested labels on the left, bars on a
time axis, durations and token counts beside the bars. Plain SVG 1.1 with no scripts or
external fonts, so it opens in any browser and embeds in issues and docs.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from kodoclient.timeline import Bar, Timeline

ROW = 22
LABEL_WIDTH = 340
CHART_WIDTH = 760
INFO_WIDTH = 170
TOP = 84
LEGEND_Y = 34
BOTTOM = 20
FONT = "font-family='DejaVu Sans Mono, Menlo, Consolas, monospace' font-size='12'"

COLORS = {
    "execution": "#4c6ef5",
    "task": "#15aabf",
    "agent": "#ae3ec9",
    "llm": "#f59f00",
    "tool": "#37b24d",
    "input": "#e8590c",
}
FAILED = "#e03131"


def seconds_text(ns: int) -> str:
    seconds = ns / 1e9
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def _tick_step(total_s: float) -> float:
    """A round tick interval giving 4-10 ticks over `total_s`."""
    if total_s <= 0:
        return 1.0
    for step in (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60,
                 120, 300, 600, 1800, 3600):  # fmt: skip
        if total_s / step <= 10:
            return float(step)
    return 7200.0


def _info(bar: Bar) -> str:
    parts = [seconds_text(bar.duration_ns) if bar.end_ns else "running"]
    if bar.tokens:
        parts.append(f"{bar.prompt_tokens}+{bar.completion_tokens} tok")
    if bar.state in ("failed", "unfinished"):
        parts.append(bar.state)
    return "  ".join(parts)


def _legend() -> list[str]:
    """What the colours and the shading mean, in one row under the title."""
    entries = [(kind, color, "0.9") for kind, color in COLORS.items()]
    entries += [("failed", FAILED, "0.9"), ("unfinished", "#868e96", "0.45")]
    out = ["<g class='legend'>"]
    x = 8
    for name, color, opacity in entries:
        out.append(
            f"<rect x='{x}' y='{LEGEND_Y}' width='12' height='12' rx='2' fill='{color}' "
            f"fill-opacity='{opacity}'/>"
        )
        out.append(f"<text x='{x + 16}' y='{LEGEND_Y + 10}' {FONT}>{escape(name)}</text>")
        x += 16 + 8 * len(name) + 18
    out.append("</g>")
    return out


def render_svg(timeline: Timeline) -> str:
    t0 = timeline.start_ns
    total = max(timeline.duration_ns, 1)
    rows = timeline.bars
    width = LABEL_WIDTH + CHART_WIDTH + INFO_WIDTH
    height = TOP + ROW * len(rows) + BOTTOM
    x0 = LABEL_WIDTH

    def x(ns: int) -> float:
        return x0 + (ns - t0) / total * CHART_WIDTH

    title = (
        f"{timeline.flow or 'execution'} {timeline.execution_id}  {timeline.status}  "
        f"{seconds_text(timeline.duration_ns)}"
    )
    if timeline.prompt_tokens or timeline.completion_tokens:
        title += f"  tokens {timeline.prompt_tokens}+{timeline.completion_tokens}"
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}'>",
        f"<rect width='{width}' height='{height}' fill='#ffffff'/>",
        f"<text x='8' y='20' {FONT} font-weight='bold'>{escape(title)}</text>",
        *_legend(),
    ]
    step = _tick_step(total / 1e9)
    tick = 0.0
    while tick * 1e9 <= total + 1:
        tx = x0 + tick * 1e9 / total * CHART_WIDTH
        out.append(
            f"<line x1='{tx:.1f}' y1='{TOP - 16}' x2='{tx:.1f}' y2='{height - BOTTOM}' "
            "stroke='#dee2e6' stroke-width='1'/>"
        )
        label = f"{tick:g}s" if step >= 1 else f"{tick * 1000:g}ms"
        out.append(f"<text x='{tx + 2:.1f}' y='{TOP - 6}' {FONT} fill='#868e96'>{label}</text>")
        tick += step
    for index, bar in enumerate(rows):
        y = TOP + index * ROW
        if index % 2:
            out.append(f"<rect x='0' y='{y}' width='{width}' height='{ROW}' fill='#f8f9fa'/>")
        label = f"{bar.kind} {bar.label}"
        if len(label) > 40 - bar.depth * 2:
            label = label[: 39 - bar.depth * 2] + "…"
        out.append(
            f"<text x='{8 + bar.depth * 14}' y='{y + 15}' {FONT}>"
            f"<title>{escape(bar.detail or bar.label)}</title>{escape(label)}</text>"
        )
        end = bar.end_ns or timeline.end_ns or bar.start_ns
        left, right = x(bar.start_ns), x(end)
        color = FAILED if bar.state == "failed" else COLORS.get(bar.kind, "#868e96")
        opacity = "0.45" if bar.state in ("unfinished", "running") else "0.9"
        out.append(
            f"<rect x='{left:.1f}' y='{y + 4}' width='{max(right - left, 2):.1f}' "
            f"height='{ROW - 8}' rx='2' fill='{color}' fill-opacity='{opacity}'>"
            f"<title>{escape(label)}: {escape(_info(bar))}</title></rect>"
        )
        out.append(
            f"<text x='{x0 + CHART_WIDTH + 8}' y='{y + 15}' {FONT} fill='#495057'>"
            f"{escape(_info(bar))}</text>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
