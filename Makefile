# The two commands of the README quickstart: `make demo` (main job) and `make test` (whole suite).
.PHONY: setup demo test bench clean

setup:
	bash scripts/setup.sh

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

bench: setup
	bash -c 'source scripts/ros_env.sh && for b in bench/*.py; do .venv/bin/python $$b; done'

clean:
	rm -rf build install log
