# fedgate: the two commands that matter are `make demo` and `make test`.
.PHONY: demo serve test lint unit interop bench fmt deps

CARGO ?= cargo

## Run fedgate with an embedded SQLite database, dev mode and a demo tenant + app.
demo: deps
	$(CARGO) run --release --bin fedgate -- serve --demo

serve: deps
	$(CARGO) run --release --bin fedgate -- serve

deps:
	@bash scripts/deps.sh

## Everything CI runs: lint, unit + integration tests (SQLite and PostgreSQL), interop tests.
test: deps lint unit interop

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	@bash scripts/postgres.sh
	$(CARGO) test --all

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

## Load driver against a release server (see docs/performance.md).
bench:
	bash scripts/bench.sh

fmt:
	$(CARGO) fmt --all
