"""Image-input evaluation bags (`ghtt-bag from-dataset ... --input images`, `ghtt-bag evaluate` through the camera
path): an H2O-format dataset folder whose rgb/ frames are real photos (../shared/fixtures/real_hands, resized small)
becomes a bag with sensor_msgs/Image + CameraInfo per frame (and so does an AssemblyHands folder with ego images and
Assembly101 fine-grained actions); evaluating it runs hand_estimator -> ghtt_pipeline live
(DDS, sim time) and the same per-image step + pipeline offline, with equal scores. Missing, corrupt or absent images
are clear errors that name the file and leave no bag behind."""

import json
import os
import time

import cv2
import numpy as np
import pytest

from ghtt_core.data.assembly import load_assemblyhands
from ghtt_core.data.h2o import h2o_taxonomy
from ghtt_core.data.joint_orders import ASSEMBLYHANDS_TO_GHTT
from ghtt_core.evaluate.stream_scoring import score_differences
from ghtt_core.pipeline import PipelineConfig
from ghtt_core.skeleton import LEFT, RIGHT
from ghtt_ros.bag import cli as bag_cli
from ghtt_ros.bag.io import bag_info, read_messages
from ghtt_ros.bag.dataset import (CAMERA_INFO_TOPIC, DEFAULT_START_NS, GT_ACTION_TOPIC, GT_HANDS_TOPIC, IMAGE_TOPIC,
                                  OBJECT_LABEL_TOPIC)
from ghtt_ros.bag.evaluation import EVAL_NAMESPACE
from ghtt_ros.convert import stamp_to_ns, two_hand_pose_from_msg
from ghtt_ros.images import image_to_rgb
from released_formats import fine_grained_row, write_fine_grained
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


# AssemblyHands: one video seen by an ego camera (its images are mono, stored as 8-bit JPEGs), 60-fps annotation ids
# with a gap (30-fps frame 53: image 000106.jpg, hands absent) and a frame without this camera's extrinsics (110).
AH_VIDEO = "nusar-2021_action_both_9081-c11b_9081_user_id_2021-02-12_161433"
AH_CAMERA, AH_OTHER_CAMERA = "HMC_21179183_mono10bit", "HMC_84346135_mono10bit"
AH_SPLIT = "val"
AH_IDS = (100, 102, 104, 108, 110, 112)  # -> 30-fps frames 50..56, first = 50
AH_FIRST = 50
AH_FRAMES = 7
AH_IMAGE_IDS = (100, 102, 104, 106, 108, 110, 112)  # the file of each 30-fps frame
AH_NO_EXTRINSICS = 110
AH_LEFT_INVALID = 102  # a used left-hand joint is not valid: left hand absent
# Assembly101 fine-grained rows (30-fps video frames, [start, end)), as (video/view, start, end, action, verb, noun).
AH_ROWS = ((f"{AH_VIDEO}/C10118_rgb.mp4", 40, 53, "pick up screw", "pick up", "screw"),
           (f"{AH_VIDEO}/{AH_CAMERA}.mp4", 40, 53, "pick up screw", "pick up", "screw"),  # same segment, other view
           (f"{AH_VIDEO}/C10118_rgb.mp4", 53, 60, "screw arm with hand", "screw", "arm"),
           ("nusar-2021_action_both_9012-a01_9012_user_id_2021-02-01_101010/C10118_rgb.mp4", 50, 55,
            "inspect diagram", "inspect", "diagram"))
# The segments of the bag's sequence (frames from its first frame, clipped to it).
AH_ACTIONS = ((0, 3, "pick up screw", "pick up", "screw"), (3, AH_FRAMES, "screw arm with hand", "screw", "arm"))
AH_K = [[FX, 0.0, CX], [0.0, FY, CY], [0.0, 0.0, 1.0]]


def _ah_cam_from_world(index):
    """[R | t] of frame `index` (t in mm), x_cam = R x_world + t: a rotation about the optical axis and y."""
    a, b = 0.1 * index, 0.3
    rz = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    ry = np.array([[np.cos(b), 0.0, np.sin(b)], [0.0, 1.0, 0.0], [-np.sin(b), 0.0, np.cos(b)]])
    return rz @ ry, np.array([20.0, -35.0, 400.0 + 5 * index])


def write_assemblyhands_folder(root, fine_grained_dir, photos):
    """The released AssemblyHands layout for one split (docs/datasets.md): annotations/<split>/ joint_3d JSON (world
    mm, raw order right then left hand, tip to base, wrist last) and ego_calib JSON (K per camera, [R | t] per 60-fps
    frame), images/ego_images_rectified/<split>/<video>/<camera>/%06d.jpg; Assembly101's fine-grained CSV. Returns
    the camera-frame joints (frames, 2, 21, 3) in metres, ghtt order, of the annotated frames with extrinsics."""
    camera_joints = moving_hands(AH_FRAMES, seed=5).astype(np.float64)
    annotations, extrinsics = {}, {}
    for frame_id in AH_IDS:
        index = frame_id // 2 - AH_FIRST
        rotation, translation_mm = _ah_cam_from_world(index)
        world_mm = (camera_joints[index] * 1000.0 - translation_mm) @ rotation  # R^T (x_cam - t)
        raw = np.zeros((42, 3))
        for hand, offset in ((RIGHT, 0), (LEFT, 21)):
            raw[offset + np.asarray(ASSEMBLYHANDS_TO_GHTT)] = world_mm[hand]
        valid = np.ones(42)
        if frame_id == AH_LEFT_INVALID:
            valid[21 + 20] = 0  # left wrist
        annotations[f"{frame_id:06d}"] = {"world_coord": raw.tolist(), "joint_valid": valid.tolist()}
        if frame_id != AH_NO_EXTRINSICS:
            rt = np.hstack([rotation, translation_mm[:, None]])
            extrinsics[f"{frame_id:06d}"] = {AH_CAMERA: rt.tolist(), AH_OTHER_CAMERA: np.eye(3, 4).tolist()}
    folder = root / "annotations" / AH_SPLIT
    folder.mkdir(parents=True)
    (folder / f"assemblyhands_{AH_SPLIT}_joint_3d_v1-1.json").write_text(
        json.dumps({"annotations": {AH_VIDEO: annotations}}))
    intrinsics = {AH_CAMERA: AH_K, AH_OTHER_CAMERA: [[300.0, 0.0, 320.0], [0.0, 300.0, 240.0], [0.0, 0.0, 1.0]]}
    (folder / f"assemblyhands_{AH_SPLIT}_ego_calib_v1-1.json").write_text(
        json.dumps({"calibration": {AH_VIDEO: {"intrinsics": intrinsics, "extrinsics": extrinsics}}}))
    images = root / "images" / "ego_images_rectified" / AH_SPLIT / AH_VIDEO / AH_CAMERA
    images.mkdir(parents=True)
    for index, frame_id in enumerate(AH_IMAGE_IDS):
        mono = cv2.cvtColor(photos[index], cv2.COLOR_BGR2GRAY)
        assert cv2.imwrite(str(images / f"{frame_id:06d}.jpg"), mono)
    write_fine_grained(fine_grained_dir, "validation.csv", [fine_grained_row(i, *row) for i, row in enumerate(AH_ROWS)])
    return camera_joints, images


def assemblyhands_from_dataset(root, fine_grained_dir, bag):
    return bag_cli.main(["from-dataset", "assemblyhands", "--root", str(root), "--split", AH_SPLIT, "--view",
                         AH_CAMERA, "--fine-grained-dir", str(fine_grained_dir), "--input", "images", "-o", str(bag)])


def read_topics(bag):
    """{topic: [(bag time, message)]} in bag order, and the topic order."""
    messages, order = {}, []
    for topic, bag_stamp, msg in read_messages(bag):
        messages.setdefault(topic, []).append((bag_stamp, msg))
        order.append(topic)
    return messages, order


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


def test_from_dataset_assemblyhands_writes_ego_images_camera_info_and_ground_truth(tmp_path, photos):
    root, fine_grained_dir = tmp_path / "assemblyhands", tmp_path / "assembly101" / "fine-grained-annotations"
    camera_joints, images = write_assemblyhands_folder(root, fine_grained_dir, photos)
    bag = tmp_path / "assemblyhands_images"
    assert assemblyhands_from_dataset(root, fine_grained_dir, bag) == 0
    assert bag_info(bag).topics == {IMAGE_TOPIC: ("sensor_msgs/msg/Image", AH_FRAMES),
                                    CAMERA_INFO_TOPIC: ("sensor_msgs/msg/CameraInfo", AH_FRAMES),
                                    OBJECT_LABEL_TOPIC: ("std_msgs/msg/String", len(AH_ACTIONS)),
                                    GT_HANDS_TOPIC: ("ghtt/msg/TwoHandPose", AH_FRAMES),
                                    GT_ACTION_TOPIC: ("ghtt/msg/ActionRecognition", len(AH_ACTIONS))}
    messages, order = read_topics(bag)
    frame_ns = (DEFAULT_START_NS + np.round(np.arange(AH_FRAMES) * 1e9 / 30.0).astype(np.int64)).tolist()
    images_, infos, truth = messages[IMAGE_TOPIC], messages[CAMERA_INFO_TOPIC], messages[GT_HANDS_TOPIC]
    assert [s for s, _ in images_] == [s for s, _ in infos] == [s for s, _ in truth] == frame_ns
    assert [stamp_to_ns(m.header.stamp) for _, m in images_ + infos + truth] == frame_ns * 3
    assert [t for t in order if t in (CAMERA_INFO_TOPIC, IMAGE_TOPIC)] == [CAMERA_INFO_TOPIC, IMAGE_TOPIC] * AH_FRAMES

    # Each frame's file (the 60-fps id of its annotation; the gap frame's file by parity), as OpenCV decodes it.
    for (_, image), frame_id in zip(images_, AH_IMAGE_IDS):
        on_disk = cv2.imread(str(images / f"{frame_id:06d}.jpg"), cv2.IMREAD_COLOR)
        assert (image.encoding, image.width, image.height, image.step) == ("bgr8", WIDTH, HEIGHT, 3 * WIDTH)
        np.testing.assert_array_equal(np.frombuffer(image.data, np.uint8).reshape(HEIGHT, WIDTH, 3), on_disk)
    # The recording's camera (not the other one of the calibration file), at the images' size.
    for _, info in infos:
        assert (info.width, info.height) == (WIDTH, HEIGHT)
        np.testing.assert_allclose(np.array(info.k).reshape(3, 3), AH_K)

    # Ground truth in the camera frame, metres: the fixture's camera-frame joints, and the loader's for this view.
    arrays = [two_hand_pose_from_msg(m) for _, m in truth]
    presence = np.array([a.presence for a in arrays])
    expected_presence = np.ones((AH_FRAMES, 2), bool)
    expected_presence[53 - AH_FIRST] = False  # no annotation
    expected_presence[AH_NO_EXTRINSICS // 2 - AH_FIRST] = False  # no extrinsics for this camera
    expected_presence[AH_LEFT_INVALID // 2 - AH_FIRST, LEFT] = False
    np.testing.assert_array_equal(presence, expected_presence)
    joints = np.array([a.joints for a in arrays])
    assert np.isnan(joints[~presence]).all()
    np.testing.assert_allclose(joints[presence], camera_joints[presence], atol=1e-6)
    (sequence,) = load_assemblyhands(root, split=AH_SPLIT, view=AH_CAMERA, fine_grained_dir=fine_grained_dir)
    np.testing.assert_array_equal(sequence.presence, presence)
    np.testing.assert_allclose(joints[presence], sequence.joints[presence], atol=1e-6)  # float32 messages

    # Actions: the video's fine-grained segments (duplicates across views once, other videos not), from frame 50.
    actions = [m for _, m in messages[GT_ACTION_TOPIC]]
    assert [(a.hypotheses[0].label, a.hypotheses[0].verb, a.hypotheses[0].noun, a.hypotheses[0].score,
             stamp_to_ns(a.observation_start), stamp_to_ns(a.observation_end)) for a in actions] == [
        (label, verb, noun, 1.0, frame_ns[start], frame_ns[end - 1]) for start, end, label, verb, noun in AH_ACTIONS]
    assert [(s, m.data) for s, m in messages[OBJECT_LABEL_TOPIC]] == [
        (frame_ns[start], noun) for start, _, _, _, noun in AH_ACTIONS]


def test_assemblyhands_missing_image_world_view_or_misplaced_actions_are_clear_errors(tmp_path, photos, capsys):
    root, fine_grained_dir = tmp_path / "assemblyhands", tmp_path / "fine-grained-annotations"
    _, images = write_assemblyhands_folder(root, fine_grained_dir, photos)
    missing = images / "000108.jpg"  # 30-fps frame 54 = sequence frame 4
    missing.unlink()
    assert assemblyhands_from_dataset(root, fine_grained_dir, tmp_path / "bag") == 1
    assert f"image file of frame 4 not found: {missing}" in capsys.readouterr().err
    assert not (tmp_path / "bag").exists()
    assert bag_cli.main(["from-dataset", "assemblyhands", "--root", str(root), "--split", AH_SPLIT, "--input",
                         "images", "-o", str(tmp_path / "bag")]) == 1  # default view: world, no images
    assert f"sequence 'assemblyhands/{AH_VIDEO}' has no images" in capsys.readouterr().err
    assert not (tmp_path / "bag").exists()
    assert bag_cli.main(["from-dataset", "synthetic", "--fine-grained-dir", str(fine_grained_dir),
                         "-o", str(tmp_path / "bag")]) == 1  # the actions of AssemblyHands only
    assert "--fine-grained-dir is for source assemblyhands, not 'synthetic'" in capsys.readouterr().err
    assert not (tmp_path / "bag").exists()


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
    # a result at the end of the first clip, then every clip_stride frames (the default stream)
    assert live["scores"]["results"] == offline["scores"]["results"] == 1 + (FRAMES - 16) // PipelineConfig.clip_stride
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
