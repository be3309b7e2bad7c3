# The two commands of the README's quick start are `make serve` and `make test`; .ci/run calls `make test`.
# Everything a fresh machine needs is installed here: uv into .tools/, then the locked environment into .venv/.

PYTHON ?= python3
UV := .tools/bin/uv
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: serve test test-postgres bench sync sync-dev lock clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --disable-pip-version-check 'uv>=0.5,<1'

sync: $(UV)
	$(UV) sync --frozen --no-dev

sync-dev: $(UV)
	$(UV) sync --frozen --extra dev

# Set up and run the service on the embedded default: SQLite file under ./var, bundled scorers and policies.
serve: sync
	.venv/bin/cdsctl db upgrade
	.venv/bin/cdsctl serve

# Set up and run the whole check: lint, types, tests (SQLite).
test: sync-dev
	bash scripts/check

# The same suite against PostgreSQL (127.0.0.1:5432, database test); each run uses a fresh schema.
test-postgres: sync-dev
	CDS_TEST_DATABASE_URL=$${CDS_TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test} \
		bash scripts/check --postgres-only

bench: sync-dev
	.venv/bin/python -m bench

lock: $(UV)
	$(UV) lock

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
