# flightctl — local stack and tests. `just --list` shows every recipe.

set dotenv-load

export PATH := `python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'` + ":" + env_var('PATH')
export CARGO_TARGET_DIR := env_var_or_default('CARGO_TARGET_DIR', justfile_directory() / "target")
# The shape `up` runs: SERVE instances of `serve` (HAProxy in front of
# more than one) and WORKERS workers, e.g. `just SERVE=2 WORKERS=3 up`.
export SERVE := env_var_or_default('SERVE', '1')
export WORKERS := env_var_or_default('WORKERS', '1')

# Bring the whole system up: Postgres, Redis, Temporal (+UI), migrate, seed, API + worker
# (SERVE=2 WORKERS=3: two APIs behind HAProxy on 8080, three workers).
up: install build
    scripts/stack.sh up

# Only the dependencies (Postgres, Redis, Temporal), e.g. to `cargo run -- serve` yourself.
infra: install
    scripts/stack.sh infra

# Stop everything `just up` started (data is kept in .data/).
down:
    scripts/stack.sh down

# What is running.
status:
    scripts/stack.sh status

# Follow the logs of every process of the local stack.
logs:
    scripts/stack.sh logs

# Install prerequisites (idempotent): protoc, redis, temporal CLI, chromium, playwright-core.
install:
    scripts/install-prereqs.sh

# Build the flightctl binary.
build:
    cargo build --bin flightctl

# Run the whole test suite (starts its own Postgres, Redis and Temporal per run).
test: install
    cargo test --all-targets -- --test-threads 4

# Formatting and lints, as CI wants them.
lint:
    cargo fmt --all -- --check
    cargo clippy --all-targets -- -D warnings

# Remove the local stack's data (stop it first).
clean-data:
    rm -rf .data

# schemathesis against its own stack with a seed drawn at random (printed in
# the output), to explore beyond the fixed seed `cargo test --test
# schemathesis` uses; a failure here is reproduced with
# `SCHEMATHESIS_SEED=<printed seed> cargo test --test schemathesis -- --nocapture`.
fuzz-api: install
    SCHEMATHESIS_SEED=random cargo test --test schemathesis -- --nocapture
