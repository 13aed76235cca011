"""QR codes as inline SVG (no image files, nothing fetched)."""

import io
import re

import qrcode
import qrcode.image.svg


def qr_svg(text: str, *, label: str) -> str:
    image = qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r' (width|height)="[^"]*"', "", svg, count=2)
    # An accessible name for screen readers; the size follows the box it is put in.
    return svg.replace("<svg ", f'<svg role="img" aria-label="{_escape(label)}" ', 1)


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
