"""Open-set action outcomes: `idle` (no hand moving, or no hand in view) and `unknown` (no class of the taxonomy close
enough) instead of a confident closed-set label.

The A-Block always scores the closed taxonomy, and its softmax shares all the probability among those classes: a
still scene or a task the model never saw still gets a top-1 with a high score. Two observable facts gate that:

- idle: the fastest hand of the newest clip moves slower than `idle_speed_m_s` (or no hand is in view);
- unknown: the best closed-set score is below `min_action_score`.

The outcome is put first in the hypotheses with its own score s (idle: 0.5 at the speed threshold up to 1 for a hand
at rest; unknown: 1 - the best closed-set score), and the closed-set scores are scaled by 1 - s, so the list stays
sorted and sums to at most 1. Thresholds and their measured effect: docs/inference.md ("Open-set outcomes").
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ghtt_core.results import Hypothesis

IDLE = "idle"
UNKNOWN = "unknown"
OPEN_SET_LABELS = (IDLE, UNKNOWN)
# A hand counts for the speed when it is present in at least this fraction of the clip's frames.
_MIN_PRESENT_FRACTION = 0.5


def hand_speed_m_s(joints, presence, frame_period_s) -> float | None:
    """Speed of the fastest hand over one clip, robust to per-frame estimation noise: per hand, the mean over joints
    of the distance between its mean pose in the first and in the last quarter of its present frames, divided by the
    time between the two quarters. joints (N, 2, 21, 3) metres, presence (N, 2). None when no hand is present in at
    least half of the frames."""
    joints = np.asarray(joints, np.float64)
    presence = np.asarray(presence, bool)
    speeds = []
    for hand in range(presence.shape[1]):
        frames = np.flatnonzero(presence[:, hand])
        if len(frames) < max(2, _MIN_PRESENT_FRACTION * len(presence)):
            continue
        quarter = max(len(frames) // 4, 1)
        first, last = frames[:quarter], frames[-quarter:]
        distance = np.linalg.norm(joints[last, hand].mean(0) - joints[first, hand].mean(0), axis=-1).mean()
        speeds.append(distance / ((last.mean() - first.mean()) * frame_period_s))
    return max(speeds) if speeds else None


def open_set_hypotheses(hypotheses: list[Hypothesis], speed_m_s: float | None, idle_speed_m_s: float,
                        min_action_score: float) -> list[Hypothesis]:
    """The closed-set hypotheses (highest score first), with an idle or unknown outcome first when one applies (idle
    wins when both do). idle_speed_m_s 0 and min_action_score 0 switch the outcomes off."""
    if idle_speed_m_s > 0 and (speed_m_s is None or speed_m_s < idle_speed_m_s):
        still = 1.0 if speed_m_s is None else 1.0 - speed_m_s / idle_speed_m_s
        outcome = Hypothesis(label=IDLE, verb="", noun="", score=0.5 + 0.5 * still)
    elif hypotheses and hypotheses[0].score < min_action_score:
        outcome = Hypothesis(label=UNKNOWN, verb="", noun="", score=1.0 - hypotheses[0].score)
    else:
        return hypotheses
    rest = 1.0 - outcome.score
    return [outcome] + [replace(h, score=h.score * rest) for h in hypotheses]
