"""Reading input media for offline estimation: a video file, a folder of images, or one image, as RGB frames."""

from dataclasses import dataclass
from pathlib import Path

from ghtt_core.estimator.image_input import as_rgb_image, read_rgb_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "video", "images" or "image"
    fps: float | None  # None for images (the caller decides)


def media_info(path):
    path = Path(path)
    if path.is_dir():
        return MediaInfo("images", None)
    if not path.is_file():
        raise ValueError(f"input not found: {path}")
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return MediaInfo("image", None)
    if suffix in VIDEO_SUFFIXES:
        import cv2

        capture = cv2.VideoCapture(str(path))
        fps = capture.get(cv2.CAP_PROP_FPS)
        capture.release()
        return MediaInfo("video", float(fps) if fps and fps > 0 else None)
    raise ValueError(f"unsupported input {path}: expected a folder of images, an image {IMAGE_SUFFIXES} "
                     f"or a video {VIDEO_SUFFIXES}")


def image_files(folder):
    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images {IMAGE_SUFFIXES} in folder {folder}")
    return files


def iter_rgb_frames(path, max_frames=None):
    """Yield (frame name, RGB uint8 image) in order; at most max_frames."""
    path = Path(path)
    kind = media_info(path).kind
    count = 0
    if kind == "video":
        import cv2

        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise ValueError(f"could not open video {path}")
        try:
            while max_frames is None or count < max_frames:
                ok, bgr = capture.read()
                if not ok:
                    break
                yield f"{path.stem}_{count:06d}", as_rgb_image(bgr, channel_order="bgr")
                count += 1
        finally:
            capture.release()
        return
    files = [path] if kind == "image" else image_files(path)
    for file in files[:max_frames]:
        yield file.name, read_rgb_image(file)
