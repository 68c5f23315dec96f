"""Evaluation: the paper's metrics (metrics), simple prediction baselines (baselines), the FID feature net (fid_net)."""
