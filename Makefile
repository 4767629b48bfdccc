# Two entry points: `make demo` (install, then run the pipeline with a synthetic feed)
# and `make test` (install, then run every test against real Kafka and PostgreSQL).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: install demo test up down clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/install
	scripts/install
	touch $@

demo: install
	$(BIN)/vanda demo

test: install
	$(BIN)/pytest

up: install
	$(BIN)/vanda up

down:
	$(BIN)/vanda down

clean: down
	rm -rf $(VENV) .vanda
