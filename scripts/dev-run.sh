#!/usr/bin/env bash
# `make run`: the four services, the web gateway and the telephony gateway on localhost, each with
# its own database and keys under var/dev, and a local fake Twilio for the telephony gateway
# (Twilio cannot be reached from a development machine). First run creates a development PKI,
# master keys and the fake Twilio account; Ctrl-C stops them all cleanly. The web app is at
# http://localhost:8080; Twilio's webhooks at http://localhost:8081.
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
# A var/dev made before the telephony gateway ran here has no certificate for it yet.
if [ ! -f "$dev/pki/gateway-telephony.crt" ]; then
  "$bin/calltrace" pki issue --ca "$dev/ca" --out "$dev/pki" --kind gateway --name telephony >/dev/null
fi

declare -A port=([identity]=7101 [media]=7102 [transcript]=7103 [compliance]=7104 [web]=7105 [telephony]=7106)
http=8080 webhooks=8081 twilio_port=8082
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
  "gateways": { "web": "127.0.0.1:${port[web]}", "telephony": "127.0.0.1:${port[telephony]}" } }
JSON
export CALLTRACE_DEPLOYMENT="$dev/deployment.json"

# The fake Twilio's account: its secrets 0600 in var/dev/twilio, made once; its certificate from
# the development CA.
twilio_dir="$dev/twilio"
if [ ! -f "$twilio_dir/account" ]; then
  mkdir -p -m 700 "$twilio_dir"
  (umask 077; echo "AC$(openssl rand -hex 16)" > "$twilio_dir/account"
   printf 'SK%s:%s\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" > "$twilio_dir/api-key"
   openssl rand -hex 16 > "$twilio_dir/auth-token")
  "$bin/calltrace" pki issue --ca "$dev/ca" --out "$twilio_dir" --kind service --name fake-twilio >/dev/null
fi
twilio_account=$(cat "$twilio_dir/account")

for s in identity media transcript compliance web telephony; do
  # The master key and (beside it, by default) the key store live in var/dev/keys, apart from the data.
  key="$dev/keys/$s.master-key"
  if [ -f "$dev/keys/$s.key" ] && [ ! -f "$key" ]; then mv "$dev/keys/$s.key" "$key"; fi  # its name before 2026-12
  if [ ! -f "$key" ]; then "$bin/calltrace" keys init "$key" >/dev/null; fi
  # Identity delivers invitation and reset tokens as files in var/dev/mail (a development mailbox).
  extra=(); cert="$s"
  if [ "$s" = identity ]; then extra=(--mail-outbox "$dev/mail"); fi
  # The web gateway runs under its gateway certificate; its pages are on http://localhost:$http.
  if [ "$s" = web ]; then cert=gateway-web; extra=(--http-listen "127.0.0.1:$http" --public-url "http://localhost:$http"); fi
  # The telephony gateway, under its gateway certificate, takes Twilio's webhooks on
  # http://localhost:$webhooks and reaches the fake Twilio's REST API.
  if [ "$s" = telephony ]; then
    cert=gateway-telephony
    extra=(--http-listen "127.0.0.1:$webhooks" --public-url "http://localhost:$webhooks" --twilio-account-sid "$twilio_account"
           --twilio-api-key-file "$twilio_dir/api-key" --twilio-auth-token-file "$twilio_dir/auth-token"
           --twilio-api-url "https://127.0.0.1:$twilio_port" --twilio-ca-file "$dev/pki/ca.crt")
  fi
  "$bin/calltrace-$s" serve \
    --certificate "$dev/pki/$cert.crt" --private-key "$dev/pki/$cert.key" --ca "$dev/pki/ca.crt" \
    --master-key "$key" --database "$dev/$s.sqlite" --listen "127.0.0.1:${port[$s]}" "${extra[@]}" \
    >>"$dev/$s.log" 2>&1 &
  pids+=($!)
done

# Each service in turn, until 60 s after the start: a service that exits, or does not answer
# SERVING by then, is named with the end of its log, and the others are stopped.
names=(identity media transcript compliance web telephony)
deadline=$((SECONDS + 60))
for i in 0 1 2 3 4 5; do
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
# The fake Twilio, once the gateway serves: it holds the development numbers given in
# var/dev/twilio/numbers (one E.164 number a line), pointed at the gateway's webhooks.
numbers=()
if [ -f "$twilio_dir/numbers" ]; then
  while read -r number; do [ -n "$number" ] && numbers+=("--number=$number,http://localhost:$webhooks/twilio/voice,http://localhost:$webhooks/twilio/status"); done < "$twilio_dir/numbers"
fi
"$bin/calltrace-fake-twilio" serve --cert "$twilio_dir/fake-twilio.crt" --key "$twilio_dir/fake-twilio.key" --port "$twilio_port" \
  --account-sid "$twilio_account" --auth-token-file "$twilio_dir/auth-token" --api-key-file "$twilio_dir/api-key" \
  ${numbers[@]+"${numbers[@]}"} >"$twilio_dir/url" 2>>"$dev/fake-twilio.log" &
pids+=($!)

for s in identity media transcript compliance web telephony; do
  echo "  $s  listening on 127.0.0.1:${port[$s]}  database $dev/$s.sqlite  log $dev/$s.log"
done
echo
echo "try:  CALLTRACE_DEPLOYMENT=$dev/deployment.json $bin/calltrace health --all --pki $dev/pki"
echo "invitations and password resets arrive as files in $dev/mail: open"
echo "  http://localhost:$http/accept-invitation?token=<the file's token>"
echo
echo "Twilio (a local fake, https://127.0.0.1:$twilio_port): list your tracking numbers in $twilio_dir/numbers and run"
echo "make run again; then place a call through the telephony gateway's webhooks with"
echo "  $bin/calltrace-fake-twilio call --fake https://127.0.0.1:$twilio_port --ca $dev/pki/ca.crt --account-sid $twilio_account \\"
echo "    --auth-token-file $twilio_dir/auth-token --gateway http://127.0.0.1:$webhooks --public-url http://localhost:$webhooks \\"
echo "    --from +447700900123 --to <a tracking number> --wav <a WAV file>"
echo
echo "the web app:  http://localhost:$http"
echo "Ctrl-C stops all six and the fake Twilio."
wait
