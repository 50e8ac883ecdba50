#!/bin/sh
# Copy the browser files apiwatch serves out of node_modules (after `npm ci`) into the
# package, under ROOT (default: the repository). One list for `make install` and the image.
set -eu
ROOT="${1:-.}"
NM="${NODE_MODULES:-node_modules}"
copy() {  # copy DEST FILE...
  dest="$ROOT/$1"
  shift
  mkdir -p "$dest"
  for file in "$@"; do cp "$NM/$file" "$dest/"; done
}
copy apiwatch/api/docs_assets \
  swagger-ui-dist/swagger-ui-bundle.js swagger-ui-dist/swagger-ui.css \
  swagger-ui-dist/favicon-32x32.png redoc/bundles/redoc.standalone.js
copy apiwatch/web/static/vendor uplot/dist/uPlot.iife.min.js uplot/dist/uPlot.min.css
