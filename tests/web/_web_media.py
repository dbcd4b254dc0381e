"""Real sample media for the web tests: PNGs drawn with Pillow and an H.264 MP4 encoded by
the ffmpeg of the imageio-ffmpeg wheel (no network, no fixtures checked in)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw


def png(color: tuple[int, int, int], size: tuple[int, int] = (320, 200), label: str = "") -> bytes:
    img = Image.new("RGB", size, color)
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.ellipse((w * 0.3, h * 0.2, w * 0.7, h * 0.8), fill=(255, 255, 255))
    if label:
        draw.text((10, 10), label, fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def mp4(path: Path, seconds: int = 6) -> Path:
    """A test-pattern clip with a keyframe every second (so seeking lands quickly) and the
    index at the front (so the browser can start playing from the first Range response)."""
    import imageio_ffmpeg

    exe = imageio_ffmpeg.get_ffmpeg_exe()
    subprocess.run(
        [exe, "-nostdin", "-v", "error", "-y", "-f", "lavfi",
         "-i", f"testsrc=duration={seconds}:size=320x240:rate=25", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-g", "25", "-threads", "1", "-movflags", "+faststart",
         str(path)],
        check=True, timeout=120)
    return path
