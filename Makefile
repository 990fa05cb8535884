# The commands people run; CI (.ci/run) calls `make test`.
CARGO ?= cargo
HELM ?= $(shell scripts/install-helm.sh)
PYTHON ?= python3

.PHONY: test lint fmt generate build run e2e helm python-deps pytest

## Everything CI checks: formatting, lints, generated files, unit and integration tests, the chart.
test: lint
	$(CARGO) test --workspace --locked
	$(MAKE) pytest
	$(MAKE) helm

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## Python dependencies of the plugin host and its tests (also needed by the assistant's plugin tests).
python-deps:
	$(PYTHON) -m pip install -r plugins/host/requirements-dev.txt

## The plugin host's own tests.
pytest:
	$(PYTHON) -m pytest plugins/host/tests -q

## Regenerate the CRD YAML in charts/wellbeing/crds from the Rust types.
generate:
	$(CARGO) run -q -p wellbeing -- crdgen
	rm -f charts/wellbeing-crds/files/*.yaml && cp charts/wellbeing/crds/*.yaml charts/wellbeing-crds/files/

helm:
	$(HELM) lint charts/wellbeing
	$(HELM) lint charts/wellbeing -f charts/wellbeing/values-gcp.yaml
	$(HELM) template wellbeing charts/wellbeing --namespace wellbeing > /dev/null
	$(HELM) template wellbeing charts/wellbeing --namespace wellbeing -f charts/wellbeing/values-gcp.yaml > /dev/null
	$(HELM) template wellbeing charts/wellbeing --namespace wellbeing --set 'watchNamespaces={*}' > /dev/null
	$(HELM) lint charts/wellbeing-crds
	$(HELM) template wellbeing-crds charts/wellbeing-crds > /dev/null

build:
	$(CARGO) build --release --locked -p wellbeing

## End-to-end suite against a real cluster (needs WELLBEING_E2E_KUBECONFIG).
e2e:
	$(CARGO) test -p wellbeing-operator --test e2e -- --nocapture
