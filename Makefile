# The two commands a newcomer needs are `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DATA_DIR ?= data
PROTO_FILES := $(wildcard proto/keyservice/v1/*.proto)
# buf, protoc-gen-es and the TypeScript client's packages come from npm, pinned
# by clients/ts/package-lock.json.
NODE_DEPS := clients/ts/node_modules/.installed
BUF := clients/ts/node_modules/.bin/buf

.PHONY: help venv run serve migrate test test-postgres gen check-gen lint bench clean node-deps proto-check

help:
	@echo "make run        start the gRPC server (127.0.0.1:50051) on SQLite in ./$(DATA_DIR)"
	@echo "                and Envoy with the legacy REST API on http://localhost:4000"
	@echo "make test       run the whole test suite"
	@echo "make gen        regenerate gen/ from proto/"
	@echo "make check-gen  fail if the committed gen/ differs from a fresh generation"
	@echo "make proto-check  buf lint, and buf breaking against the v1 baseline and HEAD~1"
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

# The gRPC server and Envoy (REST on :4000) together; Ctrl-C stops both.
run: venv migrate
	VENV=$(VENV) DATA_DIR=$(DATA_DIR) server/tools/run_dev.sh

# The suite also runs buf and the TypeScript client's tests under Node.
test: venv node-deps
	$(PY) -m pytest -q

$(NODE_DEPS): clients/ts/package-lock.json
	cd clients/ts && npm ci --no-audit --no-fund
	touch $@

node-deps: $(NODE_DEPS)

# proto/buf.gen.yaml lists every output; its Python plugin needs the venv's
# python3 first on PATH.
gen: venv node-deps
	PATH="$(abspath $(VENV))/bin:$$PATH" $(BUF) generate --template proto/buf.gen.yaml
	$(PY) server/tools/gen_envoy_descriptor.py
	$(PY) server/tools/gen_openapi.py

# The v1 contract that every later commit must stay compatible with, kept as
# an archive of proto/ so that the check needs no git history: a breaking change
# fails however many commits a push holds and wherever among them it sits, and
# in a shallow clone too. It is proto/ at 5904e08, the earliest commit buf can
# build (the first, 61ed58e, has the same .proto files but neither
# proto/buf.yaml nor the vendored google/api), made with
#   git archive --format=tar 5904e08 proto | gzip -n -9 > .ci/proto-v1.tar.gz
# Replace it only when the team decides to break v1 on purpose (every client
# must then follow), in the commit that makes the break, saying why. A new
# version (keyservice.v2) is a new package that leaves this baseline alone.
PROTO_BASELINE := .ci/proto-v1.tar.gz

# buf lint; buf breaking against the v1 baseline above and, where the clone has
# it, against the previous commit, which also guards what was added since v1.
proto-check: node-deps
	$(BUF) lint proto
	$(BUF) breaking proto --against '$(PROTO_BASELINE)#subdir=proto'
	@if git cat-file -e HEAD~1:proto/buf.yaml 2>/dev/null; then \
		echo "buf breaking proto --against .git#ref=HEAD~1,subdir=proto"; \
		$(BUF) breaking proto --against '.git#ref=HEAD~1,subdir=proto'; \
	else \
		echo "buf breaking against HEAD~1 skipped: not in this clone, or it has no proto/buf.yaml"; \
	fi

check-gen: venv
	server/tools/check_gen.sh

lint: venv
	$(VENV)/bin/ruff check server clients tests bench
	$(VENV)/bin/ruff format --check server clients tests bench
	$(VENV)/bin/mypy

# Not part of `make test`: starts its own server and Envoy, seeds a million keys
# and takes minutes. BENCH_ARGS=--quick finishes in under a minute.
bench: venv
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DATA_DIR)
