# Two entry points: `make demo` (install, then run the pipeline with a synthetic feed)
# and `make test` (install, then run every test against real Kafka and PostgreSQL).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install demo test bench up down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install
	scripts/install
	touch $@

# Only the tests use promtool (on the alert rules); building it needs Go.
$(BIN)/promtool: | $(VENV)/.installed
	scripts/install promtool

# Only the tests use a browser (the board pack's screenshot test): the demo needs none.
$(VENV)/.browser: | $(VENV)/.installed
	scripts/install browser
	touch $@

demo: install
	$(BIN)/vanda demo

test: install $(BIN)/promtool $(VENV)/.browser
	$(BIN)/pytest

# The full benchmark (200,000 incidents) on a fresh stack of its own; figures in bench.json.
bench: install
	$(BIN)/vanda bench --json bench.json

up: install
	$(BIN)/vanda up

down:
	$(BIN)/vanda down

clean: down
	rm -rf $(VENV) .vanda
