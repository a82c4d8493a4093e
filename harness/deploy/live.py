"""``hil live``: camera mode, for the qualitative look at what the model gets wrong.

Loop: ask the device to capture, scale the frame to the model's input, infer and send the
frame back; show the frame with the prediction and the crop the model saw, in a
matplotlib window or, headless, as PNG files in a folder. Every request has a deadline;
Ctrl-C ends the loop cleanly and closes the port.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.boards import Board
from harness.deploy.frames import Prediction, centre_crop, decode_pixels, predict
from harness.errors import DeviceError
from harness.link.messages import Capability, HelloResp

log = logging.getLogger(__name__)

CAPTURE_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LiveFrame:
    index: int
    image: np.ndarray
    prediction: Prediction
    crop: tuple[int, int, int, int]
    cycles: int
    clock_hz: int

    @property
    def latency_ms(self) -> float:
        return self.cycles * 1e3 / self.clock_hz if self.clock_hz else float("nan")

    def caption(self) -> str:
        return f"#{self.index}: {self.prediction.label()}, {self.latency_ms:.1f} ms"


def check_camera(info: HelloResp) -> None:
    if Capability.CAMERA not in info.capabilities:
        raise DeviceError(f"the device ({info.board}, firmware {info.firmware_version}) has no camera")
    if info.status != 0:
        raise DeviceError(f"the device has no usable model: {info.status_text or info.status}")


def capture_frames(session: Any, info: HelloResp, count: int | None = None,
                   person_index: int = 1, threshold: float = 0.5,
                   timeout: float = CAPTURE_TIMEOUT_S, interval: float = 0.0) -> Iterator[LiveFrame]:
    """Yield LiveFrames from a session that has said hello, ``count`` of them (None: forever)."""
    check_camera(info)
    out_spec = info.outputs[0]
    in_shape = info.inputs[0].shape
    dst_h, dst_w = (in_shape[1], in_shape[2]) if len(in_shape) == 4 else (0, 0)
    index = 0
    while count is None or index < count:
        result, first, pixels = session.capture(send_frame=True, timeout=timeout)
        if result.status != 0:
            raise DeviceError(f"capture failed on the device (status {result.status})")
        if first is None:
            raise DeviceError("the device sent no frame")
        image = decode_pixels(pixels, first.width, first.height, first.pixel_format)
        yield LiveFrame(
            index=index,
            image=image,
            prediction=predict(result.output, out_spec, person_index, threshold),
            crop=centre_crop(first.width, first.height, dst_w, dst_h),
            cycles=result.cycles[-1] if result.cycles else 0,
            clock_hz=info.clock_hz,
        )
        index += 1
        if interval > 0:
            time.sleep(interval)


def save_png(frame: LiveFrame, folder: Path) -> Path:
    """The frame with its crop outlined, named by index and prediction."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(frame.image)
    draw = ImageDraw.Draw(img)
    x0, y0, w, h = frame.crop
    colour = (255, 64, 64) if frame.prediction.is_person else (64, 160, 255)
    draw.rectangle([x0, y0, x0 + w - 1, y0 + h - 1], outline=colour)
    tag = "person" if frame.prediction.is_person else "noperson"
    path = folder / f"frame_{frame.index:05d}_{tag}_{frame.prediction.person_score:.2f}.png"
    img.save(path)
    return path


class WindowView:
    """A matplotlib window that shows the latest frame; closing it ends the loop."""

    def __init__(self) -> None:
        import matplotlib.pyplot as plt

        self.plt = plt
        plt.ion()
        self.fig, self.ax = plt.subplots()
        self.im: Any = None
        self.rect: Any = None

    @property
    def open(self) -> bool:
        return bool(self.plt.fignum_exists(self.fig.number))

    def show(self, frame: LiveFrame) -> None:
        from matplotlib.patches import Rectangle

        if self.im is None:
            self.im = self.ax.imshow(frame.image)
            self.ax.set_axis_off()
        else:
            self.im.set_data(frame.image)
        if self.rect is not None:
            self.rect.remove()
        x0, y0, w, h = frame.crop
        colour = "red" if frame.prediction.is_person else "deepskyblue"
        self.rect = self.ax.add_patch(Rectangle((x0, y0), w, h, fill=False, edgecolor=colour))
        self.ax.set_title(frame.caption())
        self.fig.canvas.draw_idle()
        self.plt.pause(0.001)


def run_live(board: Board, url: str, *, out_dir: Path | None = None, count: int | None = None,
             person_index: int = 1, threshold: float = 0.5, timeout: float = CAPTURE_TIMEOUT_S,
             interval: float = 0.0, baud: int | None = None,
             on_frame: Callable[[LiveFrame], None] | None = None) -> int:
    """Open ``url``, say hello, and show frames until ``count``, Ctrl-C or the window closes."""
    from harness.link.session import Session
    from harness.link.transport import open_port

    port = open_port(url, baud or board.baud)
    shown = 0
    try:
        link_baud = None if url.startswith("socket://") else baud or board.baud
        session = Session(port, timeout=timeout, baud=link_baud)
        info = session.hello()
        view = WindowView() if out_dir is None and on_frame is None else None
        try:
            for frame in capture_frames(session, info, count, person_index, threshold, timeout, interval):
                shown += 1
                log.info("%s", frame.caption())
                if on_frame is not None:
                    on_frame(frame)
                if out_dir is not None:
                    save_png(frame, out_dir)
                if view is not None:
                    if not view.open:
                        break
                    view.show(frame)
        except KeyboardInterrupt:
            log.info("stopped after %d frames", shown)
    finally:
        port.close()
    return shown
