"""Torch device and thread settings of the model nodes. Only nodes that run a model import this module (and torch):
the visualizer and the video source start without torch."""

import torch

DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def resolve_device(requested):
    """-> (torch device string, warning or None). auto: cuda:0 when CUDA is available, else cpu, silently; an explicit
    cuda request falls back to cpu with a warning when CUDA is missing."""
    requested = requested.strip()
    if requested == "cpu":
        return "cpu", None
    if requested == "auto":
        return ("cuda:0" if torch.cuda.is_available() else "cpu"), None
    if requested != "cuda" and not (requested.startswith("cuda:") and requested[5:].isdigit()):
        raise ValueError(f"parameter device: expected {DEVICE_CHOICES}, got {requested!r}")
    if not torch.cuda.is_available():
        return "cpu", f"device {requested!r} requested but CUDA is not available: running on cpu (slower)"
    index = int(requested[5:]) if ":" in requested else 0
    if index >= torch.cuda.device_count():
        raise ValueError(f"parameter device: {requested!r} but only {torch.cuda.device_count()} CUDA devices exist")
    return f"cuda:{index}", None


def set_threads(num_threads):
    """torch.set_num_threads for this process: a small pool, so torch does not starve the ROS executor."""
    torch.set_num_threads(num_threads)

