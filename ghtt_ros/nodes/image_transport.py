"""Why camera images may not arrive while their CameraInfo does: on one machine Fast DDS moves a sample through a
shared-memory segment of the writer that must hold the whole sample (Fast DDS default 512 KB;
config/fastdds_large_messages.xml 16 MB, config/fastdds_4k.xml 64 MB). Larger images fall back to fragmented UDP and
are mostly lost under best-effort QoS, without any error on either side. The hand_estimator sees the small CameraInfo
messages and can say what is wrong (bench/image_transport.py measures which sizes arrive).
"""

import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

FASTDDS_DEFAULT_SEGMENT_BYTES = 512 * 1024
FOUR_K_PROFILE = Path(__file__).resolve().parents[2] / "config" / "fastdds_4k.xml"
LARGE_PROFILE = Path(__file__).resolve().parents[2] / "config" / "fastdds_large_messages.xml"
COLOUR_BYTES_PER_PIXEL = 3  # bgr8 / rgb8, what cameras send the estimator


def shared_memory_segment():
    """(segment bytes, profile file or None) of this process's Fast DDS shared-memory transport."""
    profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    if not profile:
        return FASTDDS_DEFAULT_SEGMENT_BYTES, None
    try:
        root = ElementTree.parse(profile).getroot()
    except (OSError, ElementTree.ParseError):
        return FASTDDS_DEFAULT_SEGMENT_BYTES, profile
    for descriptor in root.iter():
        if descriptor.tag.endswith("transport_descriptor"):
            fields = {child.tag.split("}")[-1]: (child.text or "").strip() for child in descriptor}
            if fields.get("type") == "SHM" and fields.get("segment_size", "").isdigit():
                return int(fields["segment_size"]), profile
    return FASTDDS_DEFAULT_SEGMENT_BYTES, profile


def missing_images_advice(width, height, seconds_without_image):
    """What to tell a user whose CameraInfo (width x height) arrives but whose images have not for a while."""
    image_bytes = width * height * COLOUR_BYTES_PER_PIXEL
    segment_bytes, profile = shared_memory_segment()
    here = f"the {segment_bytes / 2**20:.1f} MB shared-memory segment of this process ({profile or 'Fast DDS default'})"
    start = f"CameraInfo arrives but no {width}x{height} image for {seconds_without_image:.0f} s: one is " \
            f"{image_bytes / 1e6:.1f} MB as bgr8"
    if image_bytes > segment_bytes:
        return (f"{start}, more than {here}, so such images are mostly lost; start the camera driver and this node "
                f"with FASTDDS_DEFAULT_PROFILES_FILE={FOUR_K_PROFILE} (64 MB, up to 4000x3000) or publish smaller "
                "images")
    return (f"{start}, which fits {here}; if the camera driver runs with Fast DDS's default 512 KB segment its "
            f"images are lost: start it with FASTDDS_DEFAULT_PROFILES_FILE={LARGE_PROFILE}; else check the image "
            "topic's name and QoS")
