# dblink — the two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# the CPU build of PyTorch, installed first so that the project's torch range needs nothing more
TORCH  ?= torch==2.13.0

.PHONY: setup demo test test-extra test-all plugin install-fiji clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

demo: setup
	$(BIN)/dblink demo -o demo_out

# the suite without the tests marked slow (minutes each: `make test-all` runs everything) or extra
# (seconds each, beyond this command's 3-minute budget: `make test-extra`, which CI runs too), on
# two workers (pytest-xdist; whole files per worker, so that a file's fixtures are built once)
test: setup
	$(BIN)/python -m pytest -m "not slow and not extra" -n 2 --dist loadfile

test-extra: setup
	$(BIN)/python -m pytest -m "extra and not slow" -n 2 --dist loadfile

test-all: setup
	$(BIN)/python -m pytest

# the Fiji/ImageJ plugin jar, compiled offline with javac (IJ_JAR: Debian's, or Fiji's jars/ij-*.jar)
IJ_JAR ?= /usr/share/java/ij.jar
plugin:
	bash fiji-plugin/build.sh "$(IJ_JAR)"

# copy the plugin into a Fiji installation: make install-fiji FIJI=/path/to/Fiji.app
install-fiji:
	@test -n "$(FIJI)" -a -d "$(FIJI)/plugins" || { echo "usage: make install-fiji FIJI=/path/to/Fiji.app"; exit 2; }
	bash fiji-plugin/build.sh "$$(ls $(FIJI)/jars/ij-*.jar | head -n 1)"
	cp fiji-plugin/build/DBlink_.jar "$(FIJI)/plugins/"
	@echo "installed $(FIJI)/plugins/DBlink_.jar: restart Fiji, then Plugins > DBlink"

clean:
	rm -rf $(VENV) demo_out .pytest_cache
