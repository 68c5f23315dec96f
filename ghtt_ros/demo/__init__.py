"""The main demo (`make demo`, `python -m ghtt_ros.demo`): both graphs on built-in inputs, recorded."""
