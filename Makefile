# The two commands a newcomer needs are `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?= data
PROTO_FILES := $(wildcard proto/keyservice/v1/*.proto)

.PHONY: help venv run serve migrate test test-postgres gen check-gen lint bench clean

help:
	@echo "make run        start the gRPC server (127.0.0.1:50051) on SQLite in ./$(DATA_DIR)"
	@echo "make test       run the whole test suite"
	@echo "make gen        regenerate gen/ from proto/"
	@echo "make check-gen  fail if the committed gen/ differs from a fresh generation"
	@echo "make lint       ruff and mypy"

# The venv is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

migrate: venv
	$(VENV)/bin/keyserver migrate --data-dir $(DATA_DIR)

run: venv migrate
	$(VENV)/bin/keyserver serve --data-dir $(DATA_DIR)

test: venv
	$(PY) -m pytest -q

gen: venv
	rm -rf gen/python gen/descriptor
	mkdir -p gen/python gen/descriptor
	$(PY) server/tools/gen_python.py

check-gen: venv
	server/tools/check_gen.sh

lint: venv
	$(VENV)/bin/ruff check server clients tests
	$(VENV)/bin/ruff format --check server clients tests
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(DATA_DIR)
