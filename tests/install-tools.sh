#!/usr/bin/env bash
# System tools some tests use, from Debian's packages: docker-compose (validates
# docker-compose.yml without a daemon), promtool (Prometheus rules), Chromium + ChromeDriver
# (browser tests), ab/wrk (load), shellcheck (deploy scripts). Idempotent and quick when
# everything is there. Without root (or apt) it installs nothing, and the tests that need a
# missing tool skip, saying which.
set -u
want=()
command -v docker-compose >/dev/null 2>&1 || want+=(docker-compose)
command -v promtool >/dev/null 2>&1 || want+=(prometheus)
command -v chromium >/dev/null 2>&1 || want+=(chromium)
command -v chromedriver >/dev/null 2>&1 || want+=(chromium-driver)
command -v ab >/dev/null 2>&1 || want+=(apache2-utils)
command -v wrk >/dev/null 2>&1 || want+=(wrk)
command -v shellcheck >/dev/null 2>&1 || want+=(shellcheck)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-tools: not root or no apt-get; missing: ${want[*]} (tests needing them will skip)" >&2
  exit 0
fi
echo "install-tools: installing ${want[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# --no-install-recommends keeps docker-compose from pulling in the Docker engine.
if ! apt-get install -y -qq --no-install-recommends "${want[@]}" >/tmp/facepass-install-tools.log 2>&1; then
  apt-get update -qq >>/tmp/facepass-install-tools.log 2>&1
  apt-get install -y -qq --no-install-recommends "${want[@]}" >>/tmp/facepass-install-tools.log 2>&1 \
    || echo "install-tools: apt-get failed (see /tmp/facepass-install-tools.log)" >&2
fi
exit 0
