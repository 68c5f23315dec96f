"""Hand action data: the synthetic benchmark, readers for public datasets, and windowing into model samples."""
