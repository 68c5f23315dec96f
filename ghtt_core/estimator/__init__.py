"""Image front end: images -> two-hand 3D poses in the camera frame, and object inputs (docs/estimator.md)."""
