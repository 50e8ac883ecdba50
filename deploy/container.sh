#!/bin/sh
# The container's install, start and health commands, kept here so the Dockerfile and the
# test that runs them outside a container use the very same lines.
#   container.sh install [SRC]   python venv at $APP_VENV with apiwatch from SRC (.)
#   container.sh start           migrate, then serve (role and every setting from the env)
#   container.sh healthcheck     exit 0 when /healthz answers 200
set -eu
VENV="${APP_VENV:-/opt/apiwatch}"

case "${1:-start}" in
  install)
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check --quiet "${2:-.}"
    ;;
  start)
    "$VENV/bin/apiwatch" db upgrade
    exec "$VENV/bin/apiwatch" serve
    ;;
  healthcheck)
    exec "$VENV/bin/python" -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('APIWATCH_PORT', '7860'), timeout=4)"
    ;;
  *)
    echo "usage: container.sh install [SRC] | start | healthcheck" >&2
    exit 2
    ;;
esac
