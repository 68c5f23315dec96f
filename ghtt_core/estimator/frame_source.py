"""One frame at a time from a video file, a folder of images, one image, or a live camera (a V4L2 device index such
as "0" or a path such as "/dev/video0", opened with OpenCV): the reader behind the video_source node."""

from pathlib import Path

from ghtt_core.estimator.image_input import as_rgb_image, read_rgb_image
from ghtt_core.estimator.media import image_files, iter_rgb_frames, media_info


def is_camera(source: str) -> bool:
    return source.isdigit() or source.startswith("/dev/video")


class FrameSource:
    """read() -> (name, RGB uint8 (H, W, 3)) or None at the end of a file or folder (never for a camera). A frame that
    cannot be read raises OSError or ValueError; the next read() goes on with the following one.

    loop: files and folders start again at the end. width / height (cameras only, 0 = the camera's default): the
    capture size asked for."""

    def __init__(self, source: str, loop: bool = False, width: int = 0, height: int = 0):
        self.source = str(source)
        self.loop = loop
        self._capture = None
        self._frames = None
        self._files = []
        self._next_file = 0
        if is_camera(self.source):
            self.kind = "camera"
            self._open_camera(width, height)
        else:
            info = media_info(Path(self.source))  # ValueError for a missing path or an unsupported file
            self.kind, self.fps = info.kind, info.fps
            if self.kind == "video":
                self._frames = iter_rgb_frames(self.source)
            else:  # images one by one, so an unreadable file costs only itself
                self._files = image_files(self.source) if self.kind == "images" else [Path(self.source)]
        self.frames_read = 0

    def _open_camera(self, width, height):
        import cv2

        device = int(self.source) if self.source.isdigit() else self.source
        self._capture = cv2.VideoCapture(device)
        if not self._capture.isOpened():
            raise OSError(f"cannot open camera {self.source!r} (is it connected, and is it /dev/video{self.source} "
                          "or another index? is another program using it?)")
        if width:
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else None

    def read(self):
        if self._capture is not None:
            ok, bgr = self._capture.read()
            if not ok:
                raise OSError(f"camera {self.source!r} stopped delivering frames")
            self.frames_read += 1
            return f"camera_{self.frames_read:06d}", as_rgb_image(bgr, channel_order="bgr")
        frame = self._next_video_frame() if self._frames is not None else self._next_image()
        if frame is not None:
            self.frames_read += 1
        return frame

    def _next_video_frame(self):
        frame = next(self._frames, None)
        if frame is None and self.loop and self.frames_read:
            self._frames = iter_rgb_frames(self.source)
            frame = next(self._frames, None)
        return frame

    def _next_image(self):
        if self._next_file == len(self._files):
            if not self.loop:
                return None
            self._next_file = 0
        path = self._files[self._next_file]
        self._next_file += 1
        return path.name, read_rgb_image(path)

    def close(self):
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        if self._frames is not None:
            self._frames.close()
