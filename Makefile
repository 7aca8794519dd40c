# Two commands on a fresh machine: `make run` and `make test`.
# Versions come only from requirements.lock / requirements-llm.lock (`make lock` refreshes them).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
RAG    := $(VENV)/bin/rag
STAMP  := $(VENV)/.installed
PORT   ?= 8501
PIP_VERSION := 26.3
UV_VERSION  := 0.13.9

.PHONY: install run test lint bench bench-scale llm-server llm-deps screenshot clean ingest browser-deps eval \
	lock test-fresh serve

$(PY):
	@$(PYTHON) scripts/lock.py check
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q pip==$(PIP_VERSION)

# Everything, the model-file packages included, is installed exactly as locked (hashes checked, no resolver).
$(STAMP): pyproject.toml requirements.lock scripts/lock.py | $(PY)
	@$(PY) scripts/lock.py check
	$(PIP) install -q --no-deps --require-hashes -r requirements.lock
	$(PIP) install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Re-resolve the locks (newest releases within pyproject.toml's ranges) with uv, in a venv of its own.
# Run it after changing dependencies in pyproject.toml (the install stops until you do), then `make test`.
lock:
	@test -x .venv-lock/bin/uv || ($(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install -q uv==$(UV_VERSION))
	PATH=$(CURDIR)/.venv-lock/bin:$$PATH $(PYTHON) scripts/lock.py compile

install: $(STAMP)

ingest: install
	$(RAG) ingest corpus --sync

run: ingest
	@if [ -f ui/app.py ]; then \
	  echo "Starting the app on http://127.0.0.1:$(PORT)"; \
	  $(VENV)/bin/streamlit run ui/app.py --server.headless true --server.address 127.0.0.1 \
	    --server.port $(PORT) --browser.gatherUsageStats false; \
	else $(RAG) chat; fi

# The HTTP API on http://127.0.0.1:8080 (RAG_API_HOST, RAG_API_PORT; keys: RAG_API_KEYS). `rag serve --ui` adds the app.
serve: install
	$(RAG) serve

lint: install
	$(VENV)/bin/ruff check rag evals ui tests
	$(VENV)/bin/mypy

# Debian's Chromium for the browser tests (Playwright drives it; never `playwright install`).
browser-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  echo "Installing Chromium for the browser tests (apt-get)"; \
	  $$SUDO apt-get update && $$SUDO apt-get install -y chromium; \
	fi

test: install browser-deps llm-deps
	$(VENV)/bin/ruff check rag evals ui tests
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

# A real local OpenAI-compatible server for the llm_server tests and demos. llama-cpp-python is built
# from its locked source with portable CPU flags (a native build made on one CPU segfaulted on another);
# the wheel is kept in a folder named after the source hash and the flags, which only this rule fills,
# so no build with other flags can be picked up from pip's cache. The first build takes about 5 minutes.
LLM_STAMP := $(VENV)/.llm-installed
LLM_PORT  ?= 8088
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
WHEEL_CACHE ?= $(HOME)/.cache/rag-wheels
$(LLM_STAMP): requirements-llm.lock | $(STAMP)
	$(PY) scripts/lock.py split-llama requirements-llm.lock $(VENV)/llama.req $(VENV)/llm-rest.req
	$(PIP) install -q --no-deps --require-hashes -r $(VENV)/llm-rest.req
	@key=$$( (cat $(VENV)/llama.req; echo '$(LLAMA_CMAKE_ARGS)') | sha256sum | cut -c1-16); \
	dir="$(WHEEL_CACHE)/llama-cpp-python-$$key"; \
	if ! ls "$$dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then \
	  echo "Building llama-cpp-python with CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' (about 5 minutes)"; \
	  rm -rf "$$dir.tmp" && CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' FORCE_CMAKE=1 $(PIP) wheel -q --no-deps \
	    --require-hashes --no-binary llama-cpp-python --no-build-isolation --no-cache-dir \
	    -r $(VENV)/llama.req -w "$$dir.tmp" && mv "$$dir.tmp" "$$dir" || exit 1; \
	fi; \
	$(PIP) install -q --no-deps --force-reinstall "$$dir"/llama_cpp_python-*.whl
	touch $(LLM_STAMP)

llm-deps: $(LLM_STAMP)

llm-server: llm-deps
	$(PY) -m llama_cpp.server --model "$$($(PY) -c 'from rag.llm import local_gguf_path; print(local_gguf_path())')" \
	  --model_alias smollm2-135m --n_ctx 4096 --host 127.0.0.1 --port $(LLM_PORT)

# Regenerates docs/screenshot.png from the browser test (a real Chromium over the seed corpus).
screenshot: install browser-deps
	UI_SCREENSHOT=$(CURDIR)/docs/screenshot.png $(PY) -m pytest -q -m browser tests/test_ui_browser.py \
	  -k streamed_answer -p no:cacheprovider
	@test -s docs/screenshot.png && echo "wrote docs/screenshot.png"

# The golden eval alone (extractive; fails on a regression below evals/baseline.json). `make test` runs it too.
eval: install
	$(RAG) eval --mode extractive

bench: install
	$(PY) -m evals.bench

# `rag serve` under load: 1/4/16 clients (60 s each) on the seed corpus and on 500 RealTime QA articles (indexed
# once under .rag/bench-api), beside 4 threads in process. BENCH_API_ARGS e.g. "--seconds 10 --corpus seed",
# "--soak-minutes 10". Run it on an idle machine; it writes its section of docs/benchmarks.md.
.PHONY: bench-api
bench-api: install
	$(PY) -m evals.bench_api $(BENCH_API_ARGS)

# STOP_AT=500|2000|5386 stops after that tier (the index under .rag/bench-scale is grown and reused).
bench-scale: install
	$(PY) -m evals.bench_scale $(if $(STOP_AT),--stop-at $(STOP_AT))

# The retrieval ablation (one row per rag.Ranking change, H1 dev and test recall@5) on the index that
# `make bench-scale` grew (at whatever tier it holds). Run alone on an idle machine.
.PHONY: ablate
ablate: install
	$(PY) -m evals.ablate $(ABLATE_ARGS)

clean:
	rm -rf $(VENV) .venv-lock .rag

# Proof from nothing: a clean clone of HEAD, a new virtualenv, no pip cache and no llama wheel cache, then
# `make test` there (Chromium from apt may stay). Not part of `make test`; prints its wall time.
test-fresh:
	@d=$$(mktemp -d); start=$$(date +%s); git clone -q . "$$d/repo" && cd "$$d/repo" && \
	  PIP_NO_CACHE_DIR=1 WHEEL_CACHE="$$d/wheels" RAG_DATASETS_DIR="$${RAG_DATASETS_DIR:-$(CURDIR)/../shared/datasets}" \
	  $(MAKE) test; rc=$$?; \
	  echo "make test-fresh: exit $$rc after $$(( $$(date +%s) - start )) s in $$d/repo"; exit $$rc
