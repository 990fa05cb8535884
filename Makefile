# The commands people run; CI (.ci/run) calls `make test`.
CARGO ?= cargo
HELM ?= $(shell scripts/install-helm.sh)

.PHONY: test lint fmt generate build run e2e helm

## Everything CI checks: formatting, lints, generated files, unit and integration tests, the chart.
test: lint
	$(CARGO) test --workspace --locked
	$(MAKE) helm

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate the CRD YAML in charts/wellbeing/crds from the Rust types.
generate:
	$(CARGO) run -q -p wellbeing -- crdgen

helm:
	$(HELM) lint charts/wellbeing
	$(HELM) template wellbeing charts/wellbeing --namespace wellbeing > /dev/null

build:
	$(CARGO) build --release --locked -p wellbeing

## End-to-end suite against a real cluster (needs WELLBEING_E2E_KUBECONFIG).
e2e:
	$(CARGO) test -p wellbeing-operator --test e2e -- --nocapture
