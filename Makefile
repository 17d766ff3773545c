# cryodesk developer entry points.  `make run` and `make test` set up everything
# on a fresh Debian/Ubuntu machine: system libraries (apt-get, as root or via
# sudo), a virtualenv in .venv, and the package with its test dependencies.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Runtime libraries Qt (xcb + offscreen), numba (OpenMP) and the fonts need; a C compiler and
# Python's headers for the one C extension (F16C float16 conversion; optional: without them the
# install goes on and float16 falls back to numba or numpy).
DEB_PKGS := gcc python3-dev libgl1 libegl1 libopengl0 libglib2.0-0 libfontconfig1 fonts-dejavu-core libdbus-1-3 \
	libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 \
	libxcb-randr0 libxcb-render-util0 libxcb-image0 libxcb-xinerama0 libxcb-xkb1 libgomp1

.PHONY: run test lint setup system-deps venv benchmarks deb deb-smoke clean

run: setup
	$(VENV)/bin/cryodesk gui

test: setup lint
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -n 2 --dist loadfile

# The layers (import-linter contracts in pyproject.toml) and the linter.
lint: venv
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check cryodesk tests benchmarks packaging

setup: system-deps venv

system-deps:
	@missing=""; for p in $(DEB_PKGS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py cryodesk/kernels/_f16c.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# The installer for lab workstations: dist/cryodesk_<version>_amd64.deb (PyInstaller onedir).
deb:
	bash packaging/build_deb.sh

# Build the .deb, install it into a fresh Debian 12 root and run its self-test there (as root).
deb-smoke:
	bash packaging/smoke_test.sh

benchmarks: setup
	$(PY) benchmarks/graph.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache test-artifacts
