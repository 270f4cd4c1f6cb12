#!/usr/bin/env bash
# What `.ci/run` checks of `make run` on its fresh clone: it builds and starts the four services,
# the web gateway and the telephony gateway (beside its fake Twilio), each answers SERVING, the sign-in page opens, and Ctrl-C (SIGINT to its process group, as a terminal sends it) drains
# and stops them all, leaving no service running.
set -euo pipefail
cd "$(dirname "$0")/.."
# Built first, so the wait below counts only the start-up.
source scripts/build-products.sh
out=$(mktemp)
leader=""
# However this script ends, nothing it started is left running or holding the ports.
trap 'if [ -n "$leader" ]; then kill -TERM -- "-$leader" 2>/dev/null || true; wait "$leader" 2>/dev/null || true; fi; rm -f "$out"' EXIT
# Job control on: make runs in a process group of its own and, unlike a background job of a
# script without it, does not ignore SIGINT (as under a terminal).
set -m
make --no-print-directory run >"$out" 2>&1 &
leader=$!
set +m
# Waits for make run's own word that all six serve (it prints it after checking each): make
# run's own start-up checks give up after 60 s.
deadline=$((SECONDS + 300))
until grep -q "Ctrl-C stops all six" "$out"; do
  if ! kill -0 "$leader" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    cat "$out"; echo "error: make run did not bring the four services and the two gateways up" >&2; exit 1
  fi
  sleep 1
done
grep -E "^(identity|media|transcript|compliance|web|telephony) " "$out" || true
[ "$(grep -cE "^(identity|media|transcript|compliance|web|telephony) .* SERVING " "$out")" = 6 ] || { cat "$out"; echo "error: not all six SERVING" >&2; exit 1; }
# The URL make run printed opens the sign-in page.
url=$(sed -n 's/^the web app: *//p' "$out")
python3 - "$url" <<'PY' || { cat "$out"; echo "error: the web app's sign-in page did not open at $url" >&2; exit 1; }
import sys, time, urllib.request
deadline = time.monotonic() + 30  # the HTTP listener opens just after the gateway reports itself serving
while True:
    try:
        with urllib.request.urlopen(sys.argv[1] + "/sign-in", timeout=10) as page:
            assert page.status == 200 and b"Sign in" in page.read(), page.status
            break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.1)
print("web app: " + sys.argv[1] + "/sign-in answers 200")
PY
kill -INT -- "-$leader"
status=0
wait "$leader" || status=$?
leader=""
tail -n 3 "$out"
# 130: make itself ends by the SIGINT it was sent, as under a terminal; the script's "stopped"
# says the services drained.
if { [ "$status" -ne 0 ] && [ "$status" -ne 130 ]; } || ! grep -q "^stopped$" "$out"; then echo "error: make run did not stop cleanly after Ctrl-C (exit $status)" >&2; exit 1; fi
if pgrep -f "calltrace-(identity|media|transcript|compliance|web|telephony|fake-twilio) serve" >/dev/null; then echo "error: a service is still running after Ctrl-C" >&2; exit 1; fi
echo "make run: four services and the two gateways SERVING, Ctrl-C drained and stopped them and the fake Twilio"
