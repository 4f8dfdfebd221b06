#!/usr/bin/env bash
# One entry point for people and CI.
#   ./scripts/dev.sh up     set everything up, seed a sample model and dataset, run hub + console
#   ./scripts/dev.sh test   set everything up (idempotent) and run the test suite
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

setup() {
  if [ ! -x "$PY" ]; then
    echo "==> creating virtualenv in .venv"
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
  fi
  # Reinstall only when the dependency list changed; the stamp is the hash of pyproject + constraints.
  local stamp="$VENV/.vitrine-deps"
  local want
  want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "==> installing Python dependencies (torch CPU pinned by constraints.txt)"
    "$VENV/bin/pip" install -q -c constraints.txt -e ".[ml,test]"
    echo "$want" > "$stamp"
  fi
  # System packages: Chromium (browser tests), nginx and wrk (benchmarks), Tesseract (document QA demos).
  local need=()
  [ -x /usr/bin/chromium ] || need+=(chromium)
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
  command -v tesseract >/dev/null || need+=(tesseract-ocr)
  command -v wrk >/dev/null || need+=(wrk)
  if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing ${need[*]}"
    (apt-get update -qq && apt-get install -y -qq "${need[@]}") >/dev/null || echo "warning: apt-get failed"
  fi
  if command -v pg_isready >/dev/null && ! pg_isready -q -h 127.0.0.1; then
    echo "==> starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || echo "warning: PostgreSQL did not start"
  fi
}

case "${1:-up}" in
  up)
    setup
    export VITRINE_HOME="${VITRINE_HOME:-$ROOT/.vitrine}"
    export VITRINE_ADMIN_TOKEN="${VITRINE_ADMIN_TOKEN:-hf_vitrine_local_admin}"
    PORT="${VITRINE_PORT:-8000}"
    "$VENV/bin/vitrine" serve --port "$PORT" &
    HUB=$!
    trap 'kill $HUB ${CONSOLE:-} 2>/dev/null || true' EXIT INT TERM
    "$PY" -m scripts.seed --endpoint "http://127.0.0.1:$PORT" --token "$VITRINE_ADMIN_TOKEN"
    echo "==> building the sample model's live demo (first visit loads the model)"
    curl -sf -o /dev/null -m 300 "http://127.0.0.1:$PORT/spaces/demo/all-MiniLM-L6-v2/" || echo "warning: demo build failed"
    VITRINE_ENDPOINT="http://127.0.0.1:$PORT" VITRINE_TOKEN="$VITRINE_ADMIN_TOKEN" \
      "$VENV/bin/streamlit" run apps/console/app.py --server.headless true --server.port "${CONSOLE_PORT:-8501}" \
      --browser.gatherUsageStats false --server.maxUploadSize "${VITRINE_CONSOLE_MAX_UPLOAD_MB:-512}" &
    CONSOLE=$!
    echo
    echo "Hub:     http://127.0.0.1:$PORT   (HF_ENDPOINT=http://127.0.0.1:$PORT HF_TOKEN=$VITRINE_ADMIN_TOKEN)"
    echo "Console: http://127.0.0.1:${CONSOLE_PORT:-8501}"
    echo "Demo:    http://127.0.0.1:$PORT/spaces/demo/all-MiniLM-L6-v2/"
    echo "Endpoint: http://127.0.0.1:$PORT/endpoints/demo/sentiment   (InferenceClient(model=...) or POST {\"inputs\": ...})"
    wait $HUB
    ;;
  test)
    setup
    shift || true
    exec "$PY" -m pytest "$@"
    ;;
  *)
    echo "usage: $0 up|test [pytest args]" >&2
    exit 2
    ;;
esac
