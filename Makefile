# The two entry points a user needs: `make demo` and `make test`.
# The venv's interpreter: the distribution's CPython when it is 3.11 or newer (Debian builds it
# with PGO and LTO and links libpython statically; the proxy runs ~1.5x faster on it than on a
# default source build such as pyenv's) and can make venvs (ensurepip), else the first python3 on PATH.
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do \
	$$p -c 'import sys, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && command -v $$p && break; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench venv clean system-deps screenshot

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# The tests need Node.js (Bookinfo's ratings) and Debian's Chromium and ChromeDriver (the browser
# test): installed here when missing (a failure to install is not fatal: the browser test then
# skips, or fails under CI=true).
test: $(STAMP) system-deps
	$(BIN)/python -m pytest -n auto -q

system-deps:
	-@bash scripts/install-system-deps.sh

# The README's picture of productpage, taken by the browser test.
screenshot: $(STAMP) system-deps
	PILOTFISH_SCREENSHOT=docs/productpage.png $(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_browser.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

demo: $(STAMP) system-deps
	$(BIN)/pilotfish demo


# Fuzzing (README, "Fuzzing"): each atheris harness in fuzz/ for FUZZ_SECONDS, from the seeds in
# fuzz/corpus/<target>/; what it learns stays in fuzz/.work/corpus/<target>/ (kept between runs,
# not checked in), what breaks an invariant lands in fuzz/.work/crashes/<target>/. Then the
# structure-aware config fuzzer with FUZZ_EXAMPLES fresh examples per resource type.
FUZZ_SECONDS ?= 300
FUZZ_EXAMPLES ?= 2000
FUZZ_TARGETS ?= http1_server http1_client downstream upstream bootstrap_yaml
FUZZ_WORK ?= fuzz/.work
.PHONY: fuzz
fuzz: $(STAMP)
	@status=0; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_WORK)/corpus/$$t $(FUZZ_WORK)/crashes/$$t; \
		echo "== $$t: $(FUZZ_SECONDS) s"; \
		$(BIN)/python fuzz/$$t.py -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 \
			-print_final_stats=1 -artifact_prefix=$(FUZZ_WORK)/crashes/$$t/ \
			$(FUZZ_WORK)/corpus/$$t fuzz/corpus/$$t || status=1; \
	done; \
	echo "== config (Hypothesis): $(FUZZ_EXAMPLES) examples per test"; \
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/fuzz/test_config_structured.py || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
