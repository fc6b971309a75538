# Two commands set everything up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

.PHONY: run test lint bench clean compile fuzz fuzz-config fuzz-socket

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml core/logs/_tally.c | $(BIN)/python
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# the baselines the benches measure against (APScheduler, parallel-ssh, Ansible)
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	touch $(BENCH_STAMP)

# bytecode is compiled ahead (fast when up to date): a shell with PYTHONDONTWRITEBYTECODE
# set would otherwise compile every module again at each start
compile: $(STAMP)
	@$(BIN)/python -m compileall -q core tui >/dev/null

# the console on a simulated fleet (`fleetdeck demo`); `make run ARGS=...` runs anything else
ARGS ?= demo
run: compile
	$(BIN)/fleetdeck $(ARGS)

# three workers: most tests wait on real subprocesses, sshd and tmux, so they overlap well
# even on two busy cores (TEST_JOBS=0 runs them in this process, one by one)
TEST_JOBS ?= 3
test: $(STAMP)
	$(BIN)/ruff check core tui themes tests bench
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist worksteal

# long fuzz runs (`make test` has the short ones)
fuzz: fuzz-config fuzz-socket

# the config: 10,000 hostile documents, a new seed each run (`make test` runs 200,
# derandomized); FLEETDECK_FUZZ=long picks the Hypothesis profile
fuzz-config: $(STAMP)
	FLEETDECK_FUZZ=long $(BIN)/python -m pytest -q -p no:cacheprovider --timeout 0 \
		tests/unit/test_config_fuzz.py

# the control socket: 10,000 hostile and valid frames against a real daemon
FUZZ_FRAMES ?= 10000
fuzz-socket: $(STAMP)
	FLEETDECK_FUZZ_FRAMES=$(FUZZ_FRAMES) $(BIN)/python -m pytest -s -o timeout=1800 \
		tests/functional/test_socket_fuzz.py

bench: compile $(BENCH_STAMP)
	for b in bench/*_bench.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) .pytest_cache
