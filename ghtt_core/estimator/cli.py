"""`ghtt estimate`: video / image folder / image in, per-frame two-hand poses (.npz) and an overlay out."""

from pathlib import Path

OVERLAY_SUFFIXES = (".mp4", ".png", ".gif")
DEFAULT_FPS_FOR_IMAGES = 30.0


def register(subparsers):
    parser = subparsers.add_parser(
        "estimate", help="estimate two-hand 3D poses from a video or images",
        description="Per-frame two-hand poses (metres, camera frame) from a video, an image folder or one image. "
                    "Output layout: docs/estimator.md.",
    )
    parser.add_argument("input", help="video file, folder of images, or one image")
    parser.add_argument("--output", "-o", required=True, help="output .npz")
    parser.add_argument("--overlay", help="overlay of the skeletons: .mp4 (every frame), .gif (every 2nd frame, "
                        "downscaled) or .png (four evenly spaced frames)")
    parser.add_argument("--backend", choices=("mediapipe", "resnet"), default="mediapipe",
                        help="mediapipe (off the shelf, default) or resnet (a trained ghtt estimator, --checkpoint)")
    parser.add_argument("--checkpoint", help="ResNet estimator checkpoint (backend resnet)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--fps", type=float, help=f"frame rate for image folders (default {DEFAULT_FPS_FOR_IMAGES}); "
                        "overrides a video's own rate")
    intrinsics = parser.add_mutually_exclusive_group()
    intrinsics.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"),
                            help="pinhole intrinsics in pixels of the input frames")
    intrinsics.add_argument("--hfov", type=float, default=60.0,
                            help="horizontal field of view in degrees when intrinsics are unknown (default 60)")
    parser.add_argument("--static", action="store_true",
                        help="treat frames as independent photos (no tracking between frames)")
    parser.add_argument("--mirrored", action="store_true", help="the input is a mirrored (selfie preview) image")
    parser.set_defaults(handler=run_estimate)


def build_estimator(args):
    if args.backend == "resnet":
        from ghtt_core.estimator.resnet_estimator import ResNetHandEstimator

        if not args.checkpoint:
            raise ValueError("--backend resnet needs --checkpoint")
        estimator = ResNetHandEstimator.from_checkpoint(args.checkpoint)
        estimator.default_horizontal_fov_deg = args.hfov
        return estimator
    from ghtt_core.estimator.mediapipe_backend import MediaPipeConfig, MediaPipeHandEstimator

    return MediaPipeHandEstimator(MediaPipeConfig(
        static_image_mode=args.static, image_is_mirrored=args.mirrored, default_horizontal_fov_deg=args.hfov,
    ))


class OverlayWriter:
    """Collects overlay frames while estimating and writes them in the format the file suffix asks for."""

    def __init__(self, path, fps):
        self.path = Path(path)
        if self.path.suffix.lower() not in OVERLAY_SUFFIXES:
            raise ValueError(f"overlay must end in one of {OVERLAY_SUFFIXES}, got {self.path.name}")
        self.fps = fps
        self.frames = []
        self._video = None

    def add(self, name, image, frame_hands):
        import cv2

        from ghtt_core.estimator.overlay import draw_hands

        drawn = draw_hands(image, frame_hands)
        if self.path.suffix.lower() == ".mp4":
            if self._video is None:
                fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                self._video = cv2.VideoWriter(str(self.path), fourcc, self.fps, (drawn.shape[1], drawn.shape[0]))
            self._video.write(cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
        elif self.path.suffix.lower() == ".gif":
            self.frames.append(cv2.resize(drawn, (480, round(drawn.shape[0] * 480 / drawn.shape[1]))))
        else:
            self.frames.append(drawn)

    def close(self):
        import cv2

        from ghtt_core.estimator.overlay import contact_sheet

        suffix = self.path.suffix.lower()
        if suffix == ".mp4" and self._video is not None:
            self._video.release()
        elif suffix == ".gif" and self.frames:
            from PIL import Image

            images = [Image.fromarray(f).quantize(colors=128) for f in self.frames[::2]]
            images[0].save(self.path, save_all=True, append_images=images[1:], duration=round(2000 / self.fps), loop=0)
        elif suffix == ".png" and self.frames:
            picks = sorted({round(i * (len(self.frames) - 1) / 3) for i in range(4)})
            sheet = contact_sheet([self.frames[i] for i in picks])
            cv2.imwrite(str(self.path), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def run_estimate(args):
    from ghtt_core.estimator.camera import CameraIntrinsics
    from ghtt_core.estimator.media import iter_rgb_frames, media_info
    from ghtt_core.estimator.offline import estimate_frames

    info = media_info(args.input)
    fps = args.fps or info.fps or DEFAULT_FPS_FOR_IMAGES
    frames = iter_rgb_frames(args.input, args.max_frames)
    intrinsics = None
    if args.intrinsics:
        first_name, first_image = next(frames)
        fx, fy, cx, cy = args.intrinsics
        intrinsics = CameraIntrinsics(fx, fy, cx, cy, first_image.shape[1], first_image.shape[0])
        frames = _prepend((first_name, first_image), frames)
    overlay = OverlayWriter(args.overlay, fps) if args.overlay else None
    estimator = build_estimator(args)
    poses = estimate_frames(estimator, frames, fps, intrinsics, on_frame=overlay.add if overlay else None)
    if overlay:
        overlay.close()
    poses.save(args.output)
    found = poses.presence.any(axis=1).mean()
    print(f"{poses.num_frames} frames, hands found in {found:.0%}, "
          f"{1000 * poses.seconds_per_frame.mean():.1f} ms/frame -> {args.output}")
    return 0


def _prepend(item, iterator):
    yield item
    yield from iterator
