"""A horizontal bar chart drawn on the server as SVG: no script, no library in the browser,
prints as it shows. Each bar carries its value as text, so it is never read by length alone."""

from markupsafe import Markup, escape

ROW = 28
LABEL_W = 220
BAR_W = 420
VALUE_W = 70


def bars(rows: list[tuple[str, float]], *, title: str, empty: str, top: float = 100.0) -> Markup:
    """`rows`: (label, value) in the order to draw; `top` is the full bar (scores: 100)."""
    if not rows:
        return Markup('<p class="meta">{}</p>').format(empty)
    height = ROW * len(rows) + 10
    width = LABEL_W + BAR_W + VALUE_W
    parts = [
        Markup(
            '<svg class="chart" xmlns="http://www.w3.org/2000/svg" role="img" '
            'viewBox="0 0 {w} {h}" width="100%" aria-labelledby="chart-title">'
            '<title id="chart-title">{t}</title>'
        ).format(w=width, h=height, t=title)
    ]
    scale = max(top, max(value for _label, value in rows)) or 1.0
    for index, (label, value) in enumerate(rows):
        y = 5 + index * ROW
        length = max(1.0, BAR_W * max(0.0, value) / scale)
        short = label if len(label) <= 28 else label[:27] + "…"
        parts.append(
            Markup(
                '<g><text x="{lx}" y="{ty}" text-anchor="end" class="label">{label}</text>'
                '<rect x="{bx}" y="{y}" width="{bw:.1f}" height="{bh}" class="bar"></rect>'
                '<text x="{vx:.1f}" y="{ty}" class="value">{value}</text></g>'
            ).format(
                lx=LABEL_W - 8,
                ty=y + ROW / 2 + 5,
                label=escape(short),
                bx=LABEL_W,
                y=y + 3,
                bw=length,
                bh=ROW - 8,
                vx=LABEL_W + length + 6,
                value=f"{value:.1f}",
            )
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)
