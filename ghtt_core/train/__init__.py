"""Training loops for the P-Block and the A-Block: single process or torchrun/DDP (see docs/training.md)."""
