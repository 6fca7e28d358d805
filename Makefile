# fedgate: the two commands that matter are `make demo` and `make test`.
.PHONY: demo serve test lint openapi unit ha interop package upgrade deb fuzz-smoke fuzz bench metrics-bench retention-bench scim-growth fmt deps

CARGO ?= cargo

## Run fedgate with an embedded SQLite database, dev mode and a demo tenant + app.
demo: deps
	FEDGATE_DATA_DIR=fedgate-demo-data $(CARGO) run --release --bin fedgate -- serve --demo

serve: deps
	$(CARGO) run --release --bin fedgate -- serve

deps:
	@bash scripts/deps.sh

## Everything CI runs: lint, unit + integration tests (SQLite and PostgreSQL), the
## high-availability test, interop tests, a short fuzz run. While the tests run, the tools of the
## later stages are installed and the fuzz targets built in the background (scripts/prefetch.sh).
test: PREFETCH = 1
test: deps lint unit ha interop fuzz-smoke

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	bash scripts/deny.sh
	bash scripts/openapi-check.sh
	bash monitoring/check.sh

## The admin API's OpenAPI document, checked by openapi-spec-validator (pinned, PyPI).
openapi:
	bash scripts/openapi-check.sh

unit:
	@bash scripts/postgres.sh
	$(CARGO) test --all --no-run
	@# The integration tests use about 1.4 of 2 cores (they wait on HTTP and the databases):
	@# `make test` builds the later stages' tools in that idle time, at nice 19.
	@if [ -n "$(PREFETCH)" ]; then bash scripts/prefetch.sh; fi
	$(CARGO) test --all

## Three instances behind HAProxy on a PostgreSQL cluster of their own (Debian cluster
## `fedgate_ha`, port 5439; the main cluster is not touched): kill -9 of one instance and a
## PostgreSQL restart under load. Numbers in target/ha/summary.json (docs/operations.md).
ha:
	# The server as `cargo test` builds it (the binary is reused), and the driver.
	$(CARGO) test --no-run --test it
	# One invocation with the test targets: the features `cargo test --all` built with, so nothing
	# is rebuilt but the driver.
	$(CARGO) build --workspace --bins --tests
	bash tests/ha/run.sh

interop:
	@bash scripts/postgres.sh
	# Same feature set as `cargo test`, so CI reuses the binary the tests already built.
	$(CARGO) test --no-run --test it
	bash tests/interop/run.sh sqlite
	bash tests/interop/run.sh postgres
	bash tests/interop/scim/run.sh sqlite
	bash tests/interop/scim/run.sh postgres
	bash tests/interop/upstream/run.sh sqlite
	bash tests/interop/upstream/run.sh postgres
	bash tests/interop/saml/run.sh sqlite
	bash tests/interop/saml/run.sh postgres
	bash tests/interop/portal/run.sh sqlite
	bash tests/interop/portal/run.sh postgres
	# The "verify tokens in your app" examples (jose, PyJWT): one database is enough.
	bash tests/interop/verify/run.sh sqlite
	bash tests/interop/aws/run.sh sqlite
	# CORS and the browser's code flow do not depend on the database: one is enough.
	bash tests/interop/spa/run.sh sqlite
	bash tests/package/run.sh
	# Last: building N−1 replaces N's crates in the build directory. N is not rebuilt after it
	# (FEDGATE_BIN given; the next cargo build does it): nothing later in `make test` needs it.
	FEDGATE_BIN="$${CARGO_TARGET_DIR:-$(CURDIR)/target}/debug/fedgate" bash tests/upgrade/run.sh sqlite
	FEDGATE_BIN="$(CURDIR)/target/upgrade/fedgate-N" bash tests/upgrade/run.sh postgres

## The Debian package, installed, run, signed in to and purged (root; tests/package/run.sh).
package:
	$(CARGO) test --no-run --test it
	bash tests/package/run.sh

## Release N-1 (packaging/previous-release) on a database release N migrated, both databases.
upgrade:
	@bash scripts/postgres.sh
	bash tests/upgrade/run.sh sqlite
	bash tests/upgrade/run.sh postgres

## The Debian package from a release build: target/debian/fedgate_<version>-1_<arch>.deb.
deb: deps
	bash scripts/deb.sh

## Every fuzz target for FUZZ_SECS seconds (default 20): the SAML ACS input check, SCIM filters and
## PATCH bodies (tests/fuzz/README.md). Fails on a crash and prints the crashing input. A fixed
## libFuzzer seed (FUZZ_SEED, default 1), so CI's smoke run does not fail by lottery.
FUZZ_SECS ?= 20
fuzz-smoke:
	bash scripts/fuzz-smoke.sh $(FUZZ_SECS)

## A long local run of one target (default saml_acs, 10 minutes), optimized build, a random seed;
## new inputs are added to tests/fuzz/corpus/$(FUZZ_TARGET).
FUZZ_TARGET ?= saml_acs
FUZZ_LONG_SECS = $(if $(filter command line environment,$(origin FUZZ_SECS)),$(FUZZ_SECS),600)
fuzz:
	FUZZ_SECS=$(FUZZ_LONG_SECS) FUZZ_PROFILE=release FUZZ_CORPUS=keep FUZZ_SEED=0 bash scripts/fuzz-smoke.sh $(FUZZ_LONG_SECS) $(FUZZ_TARGET)

## Load driver against a release server (see docs/performance.md).
bench:
	bash scripts/bench.sh

## The per-request metrics cost (src/metrics.rs alone, optimized; docs/operations.md#metrics).
metrics-bench:
	bash scripts/metrics-bench.sh

## Retention at 10M rows: fill, prune in batches, measure (docs/performance.md). N=1000000 for less.
retention-bench:
	bash scripts/retention-bench.sh $(N)

## SCIM filters, sorting, paging and RSS at 10k / 100k / 1M users (docs/performance.md). SIZES=10000,100000 for less.
scim-growth:
	bash scripts/scim-growth.sh $(SIZES)

fmt:
	$(CARGO) fmt --all
