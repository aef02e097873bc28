# Two entry points, each doing all set-up on a fresh machine:
#   make test   venv + pinned install, then the test suite
#   make demo   venv + pinned install, demo data, the whole DAG, results table
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DATA ?= demo-data
DEMO_OUT ?= demo-output
DEMO_FLAGS ?= --backbone tiny_cnn --input-size 96 --target-size 48 \
	--epochs 60 --batch-size 16 --learning-rate 0.002

export TF_CPP_MIN_LOG_LEVEL := 2
export PYTHONWARNINGS := ignore::FutureWarning

.PHONY: venv test demo clean

venv: $(STAMP)

$(STAMP): constraints.txt setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==24.2
	# pip byte-compiles every installed file on one core; compileall uses all
	# of them. Compiled before the tests: each fresh TensorFlow process would
	# otherwise compile what it imports.
	$(BIN)/pip install -q --no-compile --ignore-requires-python \
		-c constraints.txt -e '.[test]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $(STAMP)

# Two workers, a test file each at a time: TensorFlow's tracing, Beam and
# file I/O leave a core idle that a second file fills; --dist loadfile keeps
# a module's shared fixtures (the end-to-end runs) in one worker.
test: venv
	$(BIN)/python -m pytest -v -p no:cacheprovider -n 2 --dist loadfile \
		--durations=15 tests components

demo: venv
	test -d $(DEMO_DATA) || $(BIN)/resizer-pipeline demo-data --output $(DEMO_DATA)
	$(BIN)/resizer-pipeline run --data $(DEMO_DATA) --output $(DEMO_OUT) $(DEMO_FLAGS)

clean:
	rm -rf $(DEMO_OUT) $(DEMO_DATA)
