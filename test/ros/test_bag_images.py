"""Image-input evaluation bags (`ghtt-bag from-dataset ... --input images`, `ghtt-bag evaluate` through the camera
path): an H2O-format dataset folder whose rgb/ frames are real photos (../shared/fixtures/real_hands, resized small)
becomes a bag with sensor_msgs/Image + CameraInfo per frame; evaluating it runs hand_estimator -> ghtt_pipeline live
(DDS, sim time) and the same per-image step + pipeline offline, with equal scores. Missing, corrupt or absent images
are clear errors that name the file and leave no bag behind."""

import json
import os
import time

import cv2
import numpy as np
import pytest

from ghtt_core.data.h2o import h2o_taxonomy
from ghtt_core.evaluate.stream_scoring import score_differences
from ghtt_ros import bag_cli
from ghtt_ros.bag import bag_info, read_messages
from ghtt_ros.bag_dataset import (CAMERA_INFO_TOPIC, DEFAULT_START_NS, GT_ACTION_TOPIC, GT_HANDS_TOPIC, IMAGE_TOPIC,
                                  OBJECT_LABEL_TOPIC)
from ghtt_ros.bag_evaluation import EVAL_NAMESPACE
from ghtt_ros.convert import stamp_to_ns, two_hand_pose_from_msg
from ghtt_ros.images import image_to_rgb
from ros_fixtures import moving_hands, write_tiny_checkpoint

from test_graph import REPO

REAL_HANDS = REPO.parent / "shared" / "fixtures" / "real_hands" / "images"
# One hand each, except brooke-cagle (two); MediaPipe finds them at 160 x 120 (checked).
PHOTOS = ("thumb-up-mit.jpg", "pixabay/hand_landmarker_test_image.jpg", "pixabay/hand_thumb_up.jpg",
          "gesture_photos/call/0413d5c5-f5ba-476f-a921-ea5e967692a9.jpg",
          "gesture_photos/four/077fa4bf-a99e-496b-b895-709afc614eec.jpg",
          "gesture_photos/rock/026fd791-8f64-4fae-8cb0-0e01dc4362ce.jpg",
          "unsplash/brooke-cagle-mt2fyrdXxzk-unsplash.jpg",
          "gesture_photos/four/07fdea90-1102-4419-a3af-b394cb29531b.jpg")
FRAMES_PER_PHOTO = 6
FRAMES = FRAMES_PER_PHOTO * len(PHOTOS)  # 48 = three 16-frame clips
WIDTH, HEIGHT = 160, 120
FX, FY, CX, CY = 150.0, 148.0, 81.0, 59.5
SEQUENCE = "subject1/h1/0"
# H2O action_label (1-based class) and inclusive frame ranges, as in the released label files.
ACTIONS = ((17, 0, 23), (23, 24, FRAMES - 1))  # open lotion, pour milk
TOLERANCE_MM = 1e-6  # the documented default; observed difference: 0


def photo(relative):
    path = REAL_HANDS / relative
    if not path.is_file():
        pytest.fail(f"real-hand fixture missing: {path} (expected the shared fixtures next to the repository)")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    height, width = image.shape[:2]
    scale = min(width / WIDTH, height / HEIGHT)  # centre crop to 4:3, then resize
    crop_w, crop_h = int(WIDTH * scale), int(HEIGHT * scale)
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    return cv2.resize(image[y0:y0 + crop_h, x0:x0 + crop_w], (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def write_h2o_folder(root, photos):
    """The released H2O layout for one sequence seen by cam4: hand_pose/%06d.txt (left flag + 21 x 3, right flag +
    21 x 3, metres), cam_intrinsics.txt (fx fy cx cy width height), rgb/%06d.png, action_labels/action_train.txt."""
    camera = root / SEQUENCE / "cam4"
    (camera / "hand_pose").mkdir(parents=True)
    (camera / "rgb").mkdir()
    (camera / "cam_intrinsics.txt").write_text(f"{FX} {FY} {CX} {CY} {WIDTH} {HEIGHT}\n")
    joints = moving_hands(FRAMES, seed=4)
    for frame in range(FRAMES):
        left_flag = 0.0 if frame in (10, 11) else 1.0
        values = [left_flag, *joints[frame, 0].ravel(), 1.0, *joints[frame, 1].ravel()]
        (camera / "hand_pose" / f"{frame:06d}.txt").write_text(" ".join(f"{v:.6f}" for v in values) + "\n")
        assert cv2.imwrite(str(camera / "rgb" / f"{frame:06d}.png"), photos[frame // FRAMES_PER_PHOTO])
    (root / "action_labels").mkdir()
    rows = [f"{i + 1} {SEQUENCE} {label} {start} {end} 0 {FRAMES - 1}" for i, (label, start, end) in enumerate(ACTIONS)]
    (root / "action_labels" / "action_train.txt").write_text(
        "id path action_label start_act end_act start_frame end_frame\n" + "\n".join(rows) + "\n")
    return camera


def from_dataset(root, bag, *extra):
    return bag_cli.main(["from-dataset", "h2o", "--root", str(root), "--split", "train", "--view", "cam4",
                         "--input", "images", "-o", str(bag), *extra])


@pytest.fixture(scope="module")
def photos():
    return [photo(relative) for relative in PHOTOS]


@pytest.fixture(scope="module")
def h2o_images(tmp_path_factory, photos):
    root = tmp_path_factory.mktemp("h2o")
    return root, write_h2o_folder(root, photos)


@pytest.fixture(scope="module")
def image_bag(tmp_path_factory, h2o_images):
    bag = tmp_path_factory.mktemp("bags") / "h2o_images"
    assert from_dataset(h2o_images[0], bag) == 0
    return bag


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture
def own_ros_domain(monkeypatch):
    """The live graph in a DDS domain of its own (endpoints of destroyed nodes linger in discovery for a while)."""
    domain = int(os.environ["ROS_DOMAIN_ID"])
    monkeypatch.setenv("ROS_DOMAIN_ID", str((domain + 37) % 100 + 1))


def test_from_dataset_writes_the_images_camera_info_and_ground_truth(image_bag, h2o_images):
    _, camera = h2o_images
    topics = bag_info(image_bag).topics
    assert topics == {IMAGE_TOPIC: ("sensor_msgs/msg/Image", FRAMES),
                      CAMERA_INFO_TOPIC: ("sensor_msgs/msg/CameraInfo", FRAMES),
                      OBJECT_LABEL_TOPIC: ("std_msgs/msg/String", len(ACTIONS)),
                      GT_HANDS_TOPIC: ("ghtt/msg/TwoHandPose", FRAMES),
                      GT_ACTION_TOPIC: ("ghtt/msg/ActionRecognition", len(ACTIONS))}
    frame_ns = (DEFAULT_START_NS + np.round(np.arange(FRAMES) * 1e9 / 30.0).astype(np.int64)).tolist()
    messages = {topic: [] for topic in topics}
    order = []
    for topic, bag_stamp, msg in read_messages(image_bag):
        if topic != OBJECT_LABEL_TOPIC:  # std_msgs/String has no header: its bag time is the frame's stamp
            assert bag_stamp == stamp_to_ns(msg.header.stamp)  # bag time = source time, so /clock replays it
        messages[topic].append((bag_stamp, msg))
        order.append(topic)
    images, infos, truth = messages[IMAGE_TOPIC], messages[CAMERA_INFO_TOPIC], messages[GT_HANDS_TOPIC]
    assert [s for s, _ in images] == [s for s, _ in infos] == [s for s, _ in truth] == frame_ns
    frame_ids = {m.header.frame_id for _, m in images + infos + truth}
    assert len(frame_ids) == 1 and frame_ids != {""}
    # Each frame's CameraInfo comes right before its Image, so the estimator uses that frame's calibration.
    camera_path = [t for t in order if t in (CAMERA_INFO_TOPIC, IMAGE_TOPIC)]
    assert camera_path == [CAMERA_INFO_TOPIC, IMAGE_TOPIC] * FRAMES
    for index, (_, image) in enumerate(images):
        assert (image.encoding, image.width, image.height, image.step) == ("bgr8", WIDTH, HEIGHT, 3 * WIDTH)
        on_disk = cv2.imread(str(camera / "rgb" / f"{index:06d}.png"))  # PNG: the pixels written are the photo's
        np.testing.assert_array_equal(np.frombuffer(image.data, np.uint8).reshape(HEIGHT, WIDTH, 3), on_disk)
    np.testing.assert_array_equal(image_to_rgb(images[-1][1]), cv2.cvtColor(on_disk, cv2.COLOR_BGR2RGB))
    info = infos[0][1]
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    np.testing.assert_allclose(np.array(info.k).reshape(3, 3), [[FX, 0, CX], [0, FY, CY], [0, 0, 1]])
    # Ground truth as read from hand_pose/ (left hand absent in frames 10 and 11), actions with their objects.
    presence = np.array([two_hand_pose_from_msg(m).presence for _, m in truth])
    assert presence[:, 1].all() and not presence[10:12, 0].any() and presence[12:, 0].all()
    taxonomy = h2o_taxonomy()
    actions = [m for _, m in messages[GT_ACTION_TOPIC]]
    assert [(a.hypotheses[0].label, stamp_to_ns(a.observation_start), stamp_to_ns(a.observation_end))
            for a in actions] == [(taxonomy[label - 1][0], frame_ns[start], frame_ns[end])
                                  for label, start, end in ACTIONS]
    assert [(s, m.data) for s, m in messages[OBJECT_LABEL_TOPIC]] == [
        (frame_ns[start], taxonomy[label - 1][2]) for label, start, _ in ACTIONS]


def test_live_camera_path_and_offline_give_the_same_scores(tmp_path, image_bag, checkpoint, capsys, own_ros_domain):
    started = time.monotonic()
    code = bag_cli.main(["evaluate", str(image_bag), "-o", str(tmp_path), "--mode", "both", "--checkpoint",
                         str(checkpoint), "--num-samples", "4", "--horizon-frames", "32", "--timeout", "30",
                         "--model-complexity", "0"])
    elapsed = time.monotonic() - started
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert elapsed < 45
    assert "evaluated input: images: /image + /camera_info + /object_label -> hand_estimator (backend mediapipe)" \
           in captured.out
    assert f"live and offline scores agree within {bag_cli.DEFAULT_TOLERANCE_MM} mm" in captured.out
    live, offline = (json.loads((tmp_path / mode / "report.json").read_text()) for mode in ("live", "offline"))
    assert score_differences(live["scores"], offline["scores"], TOLERANCE_MM) == []
    for result in (live, offline):
        assert result["details"]["input"].startswith("images: ")
        assert result["details"]["estimator"]["model_complexity"] == 0
        assert result["details"]["problems"] == []
    assert "- input: images: /image" in (tmp_path / "live" / "report.md").read_text()

    # Lossless through both nodes: every image estimated once, every estimated pose reached the pipeline.
    estimator, pipeline = live["details"]["estimator_stats"], live["details"]["node_stats"]
    assert live["details"]["inputs_published"] == estimator["frames_received"] == FRAMES
    assert estimator["frames_skipped"] == estimator["frames_dropped"] == 0
    assert estimator["outputs_published"] == pipeline["frames_received"] == FRAMES
    assert offline["details"]["estimator_stats"]["outputs_published"] == FRAMES
    assert pipeline["frames_skipped"] == pipeline["frames_dropped"] == 0
    assert live["scores"]["results"] == offline["scores"]["results"] == FRAMES // 16
    recorded = bag_info(tmp_path / "live" / "outputs_bag").topics
    assert recorded[f"/{EVAL_NAMESPACE}/hands"] == ("ghtt/msg/TwoHandPose", FRAMES)

    # The input poses are the estimator's, from the photos (not the ground truth): hands were found and scored.
    refinement = offline["scores"]["refinement"]["input"]["mpjpe"]
    assert sum(refinement["count"]) >= FRAMES // 2
    assert min(m for m in refinement["mean"] if m is not None) > 1.0  # mm: photos are not the ground-truth hands


def test_evaluating_poses_of_an_image_bag_is_a_clear_error(tmp_path, image_bag, checkpoint, capsys):
    assert bag_cli.main(["evaluate", str(image_bag), "-o", str(tmp_path), "--mode", "offline", "--input", "poses",
                         "--checkpoint", str(checkpoint)]) == 1
    error = capsys.readouterr().err
    assert "has no input topic /hands (ghtt/msg/TwoHandPose); it has" in error and str(image_bag) in error


def test_missing_corrupt_or_absent_images_are_clear_errors(tmp_path, photos, capsys):
    root = tmp_path / "h2o"
    camera = write_h2o_folder(root, photos)
    missing = camera / "rgb" / "000007.png"
    missing.unlink()
    assert from_dataset(root, tmp_path / "bag") == 1
    assert f"image file of frame 7 not found: {missing}" in capsys.readouterr().err
    assert not (tmp_path / "bag").exists()

    missing.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))  # a PNG signature and nothing decodable
    assert from_dataset(root, tmp_path / "bag") == 1
    error = capsys.readouterr().err
    assert f"image file of frame 7 cannot be decoded (corrupt or not an image): {missing}" in error
    assert not (tmp_path / "bag").exists(), "a half-written bag was left behind"

    (camera / "rgb").rename(camera / "no_rgb")
    assert from_dataset(root, tmp_path / "bag") == 1
    assert "has no images" in capsys.readouterr().err
    assert bag_cli.main(["from-dataset", "synthetic", "--input", "images", "--actions", "1",
                         "-o", str(tmp_path / "bag")]) == 1
    assert "has no images" in capsys.readouterr().err and not (tmp_path / "bag").exists()
