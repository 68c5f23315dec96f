"""ghtt_core: G-HTT (Generative Hierarchical Temporal Transformer) in pure PyTorch, without ROS."""

__version__ = "0.1.0"
