# The two entry points a user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -n auto -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

demo: $(STAMP)
	@echo "make demo arrives with the local mesh (pilotfish up on Bookinfo)."
	@echo "Until then, validate and analyze Bookinfo's Istio config:"
	$(BIN)/pilotfish validate -f $(CORPUS)/bookinfo/samples/bookinfo/networking/
	-$(BIN)/pilotfish analyze -f $(CORPUS)/bookinfo/samples/bookinfo/platform/kube/bookinfo.yaml \
		-f $(CORPUS)/bookinfo/samples/bookinfo/networking/bookinfo-gateway.yaml \
		-f $(CORPUS)/bookinfo/samples/bookinfo/networking/destination-rule-all.yaml \
		-f $(CORPUS)/bookinfo/samples/bookinfo/networking/virtual-service-all-v1.yaml

CORPUS ?= ../shared/istio-corpus

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
