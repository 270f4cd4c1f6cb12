#!/usr/bin/env bash
# `make run`: the four services and the web gateway on localhost, each with its own database and
# keys under var/dev. First run creates a development PKI and master keys; Ctrl-C stops all five
# cleanly. The web app is at http://localhost:8080.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/build-products.sh
dev=var/dev
mkdir -p "$dev/keys" "$dev/mail"
chmod 700 "$dev" "$dev/keys" "$dev/mail"
if [ ! -f "$dev/pki/ca.crt" ]; then
  # The CA key goes to var/dev/ca, apart from the certificates the services read.
  "$bin/calltrace" pki init --trust-domain calltrace.dev --out "$dev/pki" --ca-out "$dev/ca"
fi

declare -A port=([identity]=7101 [media]=7102 [transcript]=7103 [compliance]=7104 [web]=7105)
http=8080
pids=()
stop() {  # stop [STATUS]
  echo
  echo "stopping (SIGTERM: drain, close databases)..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "stopped"
  exit "${1:-0}"
}
trap stop INT TERM

# One deployment file tells every service where its peers are (audit events go to compliance,
# users' tokens are checked with identity) and the CLI where the services are.
cat > "$dev/deployment.json" <<JSON
{ "services": { "identity": "127.0.0.1:${port[identity]}", "media": "127.0.0.1:${port[media]}",
                "transcript": "127.0.0.1:${port[transcript]}", "compliance": "127.0.0.1:${port[compliance]}" },
  "gateways": { "web": "127.0.0.1:${port[web]}" } }
JSON
export CALLTRACE_DEPLOYMENT="$dev/deployment.json"
for s in identity media transcript compliance web; do
  # The master key and (beside it, by default) the key store live in var/dev/keys, apart from the data.
  key="$dev/keys/$s.master-key"
  if [ -f "$dev/keys/$s.key" ] && [ ! -f "$key" ]; then mv "$dev/keys/$s.key" "$key"; fi  # its name before 2026-12
  if [ ! -f "$key" ]; then "$bin/calltrace" keys init "$key" >/dev/null; fi
  # Identity delivers invitation and reset tokens as files in var/dev/mail (a development mailbox).
  extra=(); cert="$s"
  if [ "$s" = identity ]; then extra=(--mail-outbox "$dev/mail"); fi
  # The web gateway runs under its gateway certificate; its pages are on http://localhost:$http.
  if [ "$s" = web ]; then cert=gateway-web; extra=(--http-listen "127.0.0.1:$http" --public-url "http://localhost:$http"); fi
  "$bin/calltrace-$s" serve \
    --certificate "$dev/pki/$cert.crt" --private-key "$dev/pki/$cert.key" --ca "$dev/pki/ca.crt" \
    --master-key "$key" --database "$dev/$s.sqlite" --listen "127.0.0.1:${port[$s]}" "${extra[@]}" \
    >>"$dev/$s.log" 2>&1 &
  pids+=($!)
done

# Each service in turn, until 60 s after the start: a service that exits, or does not answer
# SERVING by then, is named with the end of its log, and the others are stopped.
names=(identity media transcript compliance web)
deadline=$((SECONDS + 60))
for i in 0 1 2 3 4; do
  s=${names[$i]}
  while true; do
    if "$bin/calltrace" health --pki "$dev/pki" --service "$s" >/dev/null 2>&1; then break; fi
    if ! kill -0 "${pids[$i]}" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "error: calltrace-$s did not start; the end of its log, $dev/$s.log:" >&2
      tail -n 15 "$dev/$s.log" | sed 's/^/  /' >&2
      stop 1
    fi
    sleep 0.2
  done
done
"$bin/calltrace" health --all --pki "$dev/pki" || stop 1
echo
for s in identity media transcript compliance web; do
  echo "  $s  listening on 127.0.0.1:${port[$s]}  database $dev/$s.sqlite  log $dev/$s.log"
done
echo
echo "try:  CALLTRACE_DEPLOYMENT=$dev/deployment.json $bin/calltrace health --all --pki $dev/pki"
echo "invitations and password resets arrive as files in $dev/mail: open"
echo "  http://localhost:$http/accept-invitation?token=<the file's token>"
echo
echo "the web app:  http://localhost:$http"
echo "Ctrl-C stops all five."
wait
