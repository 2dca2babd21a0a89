# Task runner. `make` (= `make check`) sets up .venv with the test extras, installs Prometheus
# (Debian package, for the exporter tests), wrk (for the benchmark's simulator capacity row),
# tmux (a real terminal for the full-screen tests), Alertmanager (for `watch --alertmanager`) and
# its amtool and systemd's systemd-analyze (the deploy files' checks), and podman, runc,
# slirp4netns and debootstrap (the container image's test) when they are missing, and runs lint,
# types and every test. `make test` is the fast loop: every test not marked `slow` or `system`,
# with no Debian package needed. Both spread the tests over every core (pytest-xdist).
VENV ?= .venv
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: check test prometheus alertmanager wrk tmux deploy-tools container-tools demo sdist-check man image image-local-base
.DEFAULT_GOAL := check

WORKERS ?= auto

check: $(VENV)/.installed prometheus alertmanager wrk tmux deploy-tools container-tools
	$(VENV)/bin/python -m pytest -n $(WORKERS)

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -n $(WORKERS) -m "not slow and not system"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv --upgrade-deps $(VENV)
	$(VENV)/bin/pip install -e '.[test]'
	touch $@

prometheus:
	@if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends prometheus; \
	fi

alertmanager:
	@if ! command -v prometheus-alertmanager >/dev/null 2>&1 && ! command -v alertmanager >/dev/null 2>&1; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends prometheus-alertmanager; \
	fi

wrk:
	@if ! command -v wrk >/dev/null 2>&1; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends wrk; \
	fi

tmux:
	@if ! command -v tmux >/dev/null 2>&1; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends tmux; \
	fi

# amtool (Alertmanager's config checks) and systemd-analyze (the unit's checks and the unit files
# it verifies against).
deploy-tools:
	@if ! command -v amtool >/dev/null 2>&1 || ! command -v systemd-analyze >/dev/null 2>&1 \
			|| [ ! -e /usr/lib/systemd/system/multi-user.target ]; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends \
			prometheus-alertmanager systemd; \
	fi

# The container test builds its own Debian base (debootstrap) and runs it with podman on runc.
container-tools:
	@if ! command -v podman >/dev/null 2>&1 || ! command -v slirp4netns >/dev/null 2>&1 \
			|| ! PATH="$$PATH:/usr/sbin:/sbin" command -v runc >/dev/null 2>&1 \
			|| ! PATH="$$PATH:/usr/sbin:/sbin" command -v debootstrap >/dev/null 2>&1; then \
		$(SUDO) apt-get update && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends \
			podman runc slirp4netns uidmap debootstrap; \
	fi

# The container image (Containerfile) on the default public Python base: `make image`, then
#   podman run --rm -p 8095:8095 -e CPX_URL=http://CPX:8081 cli-devops
IMAGE ?= cli-devops
PODMAN ?= podman
image:
	$(PODMAN) build --format docker -t $(IMAGE) .

# The same image where no registry is reachable: a minimal Debian base made with debootstrap from
# apt's configured mirror (as root; cached in build/container), then the build on it.
LOCAL_BASE ?= localhost/cli-devops-base:bookworm
image-local-base:
	$(SUDO) sh deploy/container/local-base.sh $(LOCAL_BASE) build/container
	$(SUDO) $(PODMAN) build --pull=never --format docker --network host \
		--build-arg BASE_IMAGE=$(LOCAL_BASE) --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
		-t $(IMAGE) .

demo: $(VENV)/.installed
	$(VENV)/bin/cli_devops --demo services

# The release as a user gets it: build the sdist, install it with its test extras in a fresh
# venv, and run its whole test suite from the unpacked sdist (tests/test_release.py checks the
# same quickly on every run).
SDIST_DIR := build/sdist-check
sdist-check: $(VENV)/.installed
	rm -rf $(SDIST_DIR) && mkdir -p $(SDIST_DIR)
	$(VENV)/bin/python -m build --sdist --outdir $(SDIST_DIR) .
	tar -xzf $(SDIST_DIR)/cli_devops-*.tar.gz -C $(SDIST_DIR)
	$(PYTHON) -m venv $(SDIST_DIR)/venv
	$(SDIST_DIR)/venv/bin/pip install "$$(ls $(SDIST_DIR)/cli_devops-*.tar.gz)[test]"
	cd $(SDIST_DIR)/cli_devops-*/ && ../venv/bin/python -m pytest -p no:randomly

# Man pages (one per command, cli_devops.1 and cli_devops-COMMAND.1) generated from the click
# commands into build/man; click-man is a development tool only, never a runtime dependency.
man: $(VENV)/.installed
	$(VENV)/bin/pip install -q 'click-man>=0.4'
	rm -rf build/man
	$(VENV)/bin/click-man cli_devops --target build/man
