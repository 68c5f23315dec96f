"""Evaluation: the paper's metrics (metrics), simple prediction baselines (baselines), the FID feature net (fid_net),
the evaluation protocols and predictor interface (protocols), the HTT recognition baseline (htt_baseline), the
flattened ablation's training (flattened_training), and `ghtt benchmark` (benchmark, report, cli)."""
