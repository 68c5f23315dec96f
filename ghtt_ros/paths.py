"""Standard-type views of a prediction for tools that do not know ghtt messages: nav_msgs/Path of each predicted
wrist (the sample mean), one PoseStamped per predicted frame, stamped with that frame's own time.

Frames that were already in the past when the prediction was published (before first_future_frame) are left out, so a
Path holds only what is still ahead. Orientation is the identity: the path says where the wrist goes, not how it turns.
"""

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path

from ghtt_ros.convert import duration_to_seconds, motion_prediction_summary_from_msg, ns_to_stamp, stamp_to_ns

WRIST = 0


def wrist_paths(summary) -> list:
    """MotionPredictionSummary -> [Path of the left wrist, Path of the right wrist]; an absent hand's Path is empty
    (it clears the previous one in RViz)."""
    mean, _ = motion_prediction_summary_from_msg(summary)
    stamp_ns = stamp_to_ns(summary.header.stamp)
    period_ns = duration_to_seconds(summary.frame_period) * 1e9
    paths = []
    for hand in range(2):
        path = Path(header=summary.header)
        if summary.hand_present[hand]:
            for index in range(int(summary.first_future_frame), int(summary.num_frames)):
                pose = PoseStamped()
                pose.header.stamp = ns_to_stamp(stamp_ns + round((index + 1) * period_ns))
                pose.header.frame_id = summary.header.frame_id
                x, y, z = (float(v) for v in mean[index, hand, WRIST])
                pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = x, y, z
                pose.pose.orientation.w = 1.0
                path.poses.append(pose)
        paths.append(path)
    return paths
