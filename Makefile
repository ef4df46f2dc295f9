PYTHON ?= python3

.PHONY: install quickstart test lint

install:
	PYTHON=$(PYTHON) bash scripts/install.sh

# The README's main job: baseline evaluation, one self-play round of the embedded default, a before/after table.
quickstart: install
	$(PYTHON) -m puzzleloop run configs/cpu-quick.yaml

test: install
	bash scripts/install_browser.sh
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
