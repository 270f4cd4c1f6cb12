#!/usr/bin/env bash
# `make browser-test` (part of `make test`): the web app in a real headless Chromium
# (each Tests/Browser/walk_*.py in turn) against the four services and calltrace-web started as processes
# (ports 7311-7315, pages on 7390, everything under var/browser-test, made afresh). The CLI sets
# up two firms as an operator and their admins would, and a recorded call with its transcript
# arrives through the C gateway client; the browser does the rest. Screenshots: .build/screenshots.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.build/browser
[ -x "$venv/bin/python" ] || { echo "error: run make browser first (Chromium, chromedriver and the Python packages)" >&2; exit 1; }
run=var/browser-test
source scripts/build-products.sh
# Ports of their own (BROWSER_FIRST_PORT, BROWSER_HTTP_PORT): two checkouts can run this at once.
deployment_dir=$run trust_domain=calltrace.browser first_port=${BROWSER_FIRST_PORT:-7311} http_port=${BROWSER_HTTP_PORT:-7390}
web_extra=(--webhook-allow-private-addresses true)  # the walk's webhook points at this machine
twilio_numbers=(+441184960001)  # Smith & Co's number at the (fake) Twilio account: a call back is placed from it
source scripts/local-deployment.sh
make -s -C clients/c BUILD="$PWD/$run/c" >/dev/null
ct() {  # ct SERVICE ARGS...: the CLI against one of this run's services, as the web gateway's own tooling
  local service=$1; shift
  CALLTRACE_AS=gateway-web "$bin/calltrace" "$@" --pki "$pki" --target "127.0.0.1:${port[$service]}"
}
field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -1; }
invitation() { sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p' "$(grep -l "$1" "$run"/mail/* | tail -1)"; }
password="correct horse battery staple"

firm() {  # firm NAME ADMIN_EMAIL NUMBER SOURCE: a firm ready for calls; sets org and admin
  org=$(ct identity orgs create --as operator-admin --name "$1" --admin-email "$2" --json | field orgId)
  printf '%s\n%s\n' "$(invitation "$2")" "$password" | ct identity accounts redeem >/dev/null
  admin=$(printf '%s\n' "$password" | ct identity login --org "$org" --email "$2")
  ct transcript tracking-numbers assign --org "$org" "$3" --source "$4" --channel google-ads --token "$admin" >/dev/null
  ct transcript transcripts settings --org "$org" --transcription on --engine manual --analysis-engine local --token "$admin" >/dev/null
  local agreement
  agreement=$(ct compliance register agreement --org "$org" --token "$admin" --json)
  ct compliance register accept --org "$org" --template "$(echo "$agreement" | field templateVersion)" \
    --register-version "$(echo "$agreement" | field registerVersion)" --token "$admin" >/dev/null
}
firm "Jones Legal LLP" admin@jones.example "0118 496 0101" "Google Ads - family"
other_org=$org
firm "Smith & Co Solicitors" admin@smith.example "0118 496 0001" "Google Ads - personal injury"

# A call of 12 seconds (a tone, 8 kHz mono), reported and uploaded by the C gateway client; the
# gateway's own speech-to-text stands in as the text submitted for it.
python3 - "$run/call.wav" <<'PY'
import math, struct, sys, wave
with wave.open(sys.argv[1], "wb") as out:
    out.setnchannels(1); out.setsampwidth(2); out.setframerate(8000)
    out.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * (300 + i // 8000 * 50) * i / 8000))) for i in range(8000 * 12)))
PY
said="I was hurt at work last month and my employer says it was my fault."
"$run/c/calltrace-gateway-example" 127.0.0.1 "${port[transcript]}" "${port[media]}" "${port[compliance]}" \
  "$pki/gateway-telephony.crt" "$pki/gateway-telephony.key" "$pki/ca.crt" \
  calltrace.browser browser-call-1 "0118 496 0001" "07700 900123" "$run/call.wav" > "$run/gateway.out"
printf '[0.0-5.0] caller: %s\n[5.0-9.0] caller: My card is 4111 1111 1111 1111.\n[9.0-12.0] firm: We will call you back this afternoon.\n' "$said" \
  | ct transcript transcripts submit --as gateway-telephony --org "$org" browser-call-1 >/dev/null

rm -rf .build/screenshots
export WEB_BASE="http://localhost:$http_port" WEB_MAIL="$run/mail" WEB_SHOTS=.build/screenshots \
  FIRM_ORG="$org" FIRM_ADMIN_EMAIL=admin@smith.example OTHER_ORG="$other_org" OTHER_ADMIN_EMAIL=admin@jones.example \
  CALL_ID=browser-call-1 PASSWORD="$password" CALL_SAID="$said" FIRM_NAME="Smith & Co Solicitors" CALLTRACE_CLI="$bin/calltrace"
# The website tag's walk: the firm's pages on $http_port+3 (its website's origin) and +4 (a foreign
# one), its admin's token and the CLI's way to transcript, and the C gateway client for its call.
export DNI_PAGE_PORT=$((http_port + 3)) FIRM_ADMIN_TOKEN="$admin" WALK_PKI="$pki" TRANSCRIPT_TARGET="127.0.0.1:${port[transcript]}" \
  CALL_WAV="$run/call.wav" GATEWAY_CLIENT="$run/c/calltrace-gateway-example 127.0.0.1 ${port[transcript]} ${port[media]} ${port[compliance]} $pki/gateway-telephony.crt $pki/gateway-telephony.key $pki/ca.crt calltrace.browser"
failed=0
for walk in ${BROWSER_WALKS:-Tests/Browser/walk_*.py}; do  # BROWSER_WALKS: some of them only
  echo "== $walk"
  "$venv/bin/python" "$walk" || failed=1
done
exit "$failed"
