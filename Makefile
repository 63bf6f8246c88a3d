# Two commands do the work: `make run` (execute the notebooks) and `make test` (pytest).
# Both first make sure .venv matches requirements.txt + constraints.txt + pyproject.toml.
#
#   make run                 every notebook in smoke mode -> outputs/REPORT.md
#   make run NB=01           only notebooks whose name starts with 01
#   SMOKE=0 make run         full mode (real data, T4-sized settings; wants a GPU and network)
#   make run NB=04 DATA=real SIZES=cpu   real data at CPU sizes (DATA: procedural|real, SIZES: tiny|cpu|t4|long)
#   make test                unit tests + static notebook checks + smoke runs with metric bounds
#   make strip               strip outputs and execution counts from notebooks/*.ipynb, then regenerate
#                            the student versions (notebooks/student/) from them
#   make clean               remove outputs/ ; make distclean also removes .venv

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= python3.11
VENV ?= .venv
NB ?=
SMOKE ?= 1
DATA ?=
SIZES ?=
OUT ?= outputs
ARGS ?=

VPY := $(VENV)/bin/python
STAMP := $(VENV)/.course3d-deps.sha256
DEPS := requirements.txt constraints.txt pyproject.toml
KERNEL := course3d
KERNEL_JSON = $${JUPYTER_DATA_DIR:-$${XDG_DATA_HOME:-$${HOME:-~}/.local/share}/jupyter}/kernels/$(KERNEL)/kernel.json

export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: venv run test strip clean distclean

# (Re)build .venv when the dependency files changed since the last complete install. The stamp
# is written last, so an interrupted install starts over on the next call.
venv:
	@want="$$(sha256sum $(DEPS) | sha256sum | cut -d' ' -f1)"; \
	if [ -x "$(VPY)" ] && [ "$$(cat "$(STAMP)" 2>/dev/null)" = "$$want" ]; then \
	  if ! grep -qs "\"$(CURDIR)/$(VPY)\"" "$(KERNEL_JSON)"; then \
	    echo "==> registering Jupyter kernel '$(KERNEL)' for $(CURDIR)/$(VENV)"; \
	    "$(VPY)" -m ipykernel install --user --name $(KERNEL) --display-name "Python ($(KERNEL))" >/dev/null; \
	  fi; \
	  exit 0; \
	fi; \
	command -v "$(PYTHON)" >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or pass PYTHON=/path/to/python3.11" >&2; exit 1; }; \
	echo "==> building $(VENV) with $$($(PYTHON) --version) (dependency files changed or no venv yet)"; \
	start=$$(date +%s); \
	rm -rf "$(VENV)"; \
	"$(PYTHON)" -m venv "$(VENV)"; \
	"$(VPY)" -m pip install --quiet --upgrade pip; \
	"$(VPY)" -m pip install --disable-pip-version-check -r requirements.txt; \
	"$(VPY)" -m pip install --disable-pip-version-check --no-deps -e .; \
	"$(VPY)" -m ipykernel install --user --name $(KERNEL) --display-name "Python ($(KERNEL))"; \
	echo "$$want" > "$(STAMP)"; \
	echo "==> $(VENV) ready in $$(( $$(date +%s) - start )) s"

run: venv
	"$(VPY)" -m tools.nbrun --smoke $(SMOKE) --out $(OUT) $(if $(NB),--nb $(NB)) $(if $(DATA),--data $(DATA)) $(if $(SIZES),--sizes $(SIZES))

test: venv
	"$(VPY)" -m pytest $(ARGS)

strip: venv
	"$(VPY)" -m tools.strip_notebooks
	"$(VPY)" -m tools.student

clean:
	rm -rf $(OUT)

distclean: clean
	rm -rf $(VENV)
