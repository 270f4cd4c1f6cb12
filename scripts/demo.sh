#!/usr/bin/env bash
# `make demo`: one law firm's life in CallTrace, end to end, on this machine. It starts its own
# four services, web gateway and telephony gateway (ports 7201-7206, pages on 7290, Twilio's
# webhooks on 7291, a fake Twilio on 7292, everything under var/demo, made
# afresh each run: scripts/local-deployment.sh), walks the firm through the product printing
# what each step proves, and stops them again: re-runnable,
# and nothing is left running. The call's audio is synthesised locally with espeak-ng.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=var/demo
source scripts/build-products.sh
deployment_dir=$demo trust_domain=calltrace.demo first_port=7201 http_port=7290
twilio_numbers=(+441184960001)  # the firm's Google Ads number, at the (fake) Twilio account, pointed at the telephony gateway
source scripts/local-deployment.sh
echo "building the C gateway client..."
make -s -C clients/c BUILD="$PWD/$demo/c" >/dev/null
gateway="$demo/c/calltrace-gateway-example"

step() { printf '\n\033[1m== %s\033[0m\n' "$1"; }
proves() { printf '   \033[32m✓ %s\033[0m\n' "$1"; }
show() { sed 's/^/   /'; }
ct() {  # ct SERVICE ARGS...: the CLI against one of the demo's services, as the web gateway's own tooling (the pages' stand-in)
  local service=$1; shift
  CALLTRACE_AS=gateway-web "$bin/calltrace" "$@" --pki "$pki" --target "127.0.0.1:${port[$service]}"
}
staff() {  # staff TOKEN ARGS...: a firm's staff member at a terminal: the CLI through the web app, no certificate
  local token=$1; shift
  env -u CALLTRACE_PKI -u CALLTRACE_AS CALLTRACE_URL="http://localhost:$http_port" CALLTRACE_ORG="$org" CALLTRACE_TOKEN="$token" "$bin/calltrace" "$@"
}
twilio_status() {  # twilio_status URL: the HTTP status the (fake) Twilio answers GET URL with, as the gateway's API key
  python3 - "$1" "$pki/ca.crt" "$twilio_dir/api-key" <<'PY'
import base64, ssl, sys, urllib.error, urllib.request
url, ca, key = sys.argv[1:4]
request = urllib.request.Request(url, headers={"Authorization": "Basic " + base64.b64encode(open(key).read().strip().encode()).decode()})
try:
    print(urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca), timeout=5).status)
except urllib.error.HTTPError as error:
    print(error.code)
PY
}
field() { sed -n "s/.*\"$1\" *: *\"\\([^\"]*\\)\".*/\\1/p" | head -1; }
password="correct horse battery staple"

step "The four services, each with its own database and keys, over mutual TLS"
for s in identity media transcript compliance; do
  ct "$s" health --as operator-admin --service "$s" | show
done
proves "every service answers health to an operator certificate of the deployment's CA"

step "An operator creates the firm; its admin accepts the e-mailed invitation and signs in"
org=$(ct identity orgs create --as operator-admin --name "Smith & Co Solicitors" --admin-email admin@smith.example --json | field orgId)
echo "   organisation $org"
invitation() { sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p' "$(grep -l "$1" "$demo"/mail/* | tail -1)"; }
printf '%s\n%s\n' "$(invitation admin@smith.example)" "$password" | ct identity accounts redeem | show
admin=$(printf '%s\n' "$password" | ct identity login --org "$org" --email admin@smith.example)
proves "the invitation went to the admin's mailbox, never to the operator (P8); the password went on standard input"

step "A member and an analyst join"
for who in member analyst; do
  ct identity users invite --org "$org" --email "$who@smith.example" --role "$who" --token "$admin" | show
  printf '%s\n%s\n' "$(invitation "$who@smith.example")" "$password" | ct identity accounts redeem >/dev/null
done
analyst=$(printf '%s\n' "$password" | ct identity login --org "$org" --email analyst@smith.example)
proves "roles decide what each may see: the analyst gets reports, never audio or transcripts (P6)"

step "Two tracking numbers with their marketing sources; transcription switched on"
echo "   before the firm chooses, transcription is off:"
ct transcript transcripts settings --org "$org" --token "$admin" | show
ct transcript tracking-numbers assign --org "$org" "0118 496 0001" --source "Google Ads - personal injury" --channel google-ads --campaign "PI spring" --token "$admin" | show
ct transcript tracking-numbers assign --org "$org" "0118 496 0002" --source "Law Society directory" --channel directory --token "$admin" | show
echo "   calls to the Google Ads number ring the office's phone for 20 s, then go to voicemail:"
ct transcript tracking-numbers routing "0118 496 0001" --org "$org" --destination "0118 496 0100" --ring 20 --voicemail on --token "$admin" | show
ct transcript transcripts settings --org "$org" --transcription on --engine manual --analysis-engine local --token "$admin" | show
ct compliance notices set --org "$org" --firm-name "Smith & Co Solicitors" --firm-phone "0118 496 0000" --inbound-greeting --token "$admin" | show
echo "   nothing is recorded until the firm's admin accepts the processing agreement (P5); the admin reads it, then accepts:"
agreement=$(ct compliance register agreement --org "$org" --token "$admin" --json)
ct compliance register accept --org "$org" --template "$(echo "$agreement" | field templateVersion)" \
  --register-version "$(echo "$agreement" | field registerVersion)" --token "$admin" | show
proves "transcription (and so Deepgram and Anthropic) is off until the firm turns it on: no job is queued before (P5)"

step "An inbound call through Twilio's webhooks: the office rung, the call recorded, the recording moved into CallTrace and deleted at Twilio"
said=("Hello, I was hurt in a car crash last week and I need some advice about a claim."
      "My card number is 4111 1111 1111 1111 if you need a payment for the consultation."
      "Please call me back this afternoon.")
# Each sentence spoken on its own, then joined: the times of each are known, as speech-to-text gives them.
for i in "${!said[@]}"; do espeak-ng -w "$demo/said-$i.wav" "${said[$i]}" 2>/dev/null; done
python3 - "$demo" "${#said[@]}" > "$demo/times" <<'PY'
import sys, wave
folder, count = sys.argv[1], int(sys.argv[2])
parts = [wave.open(f"{folder}/said-{i}.wav") for i in range(count)]
with wave.open(f"{folder}/call.wav", "wb") as out:
    out.setparams(parts[0].getparams())
    start = 0.0
    for part in parts:
        frames = part.readframes(part.getnframes())
        out.writeframes(frames)
        length = part.getnframes() / part.getframerate()
        print(f"{start:.3f}-{start + length:.3f}")
        start += length
PY
mapfile -t times < "$demo/times"
echo "   Twilio cannot be reached from here: a local fake Twilio plays the call, sending the webhooks signed as Twilio"
echo "   signs them, and serves the synthesised audio as the call's recording."
fake_call() {  # fake_call OUT ARGS...: the fake Twilio plays a call through the gateway's webhooks; its summary in OUT, shown
  local out=$1; shift
  "$bin/calltrace-fake-twilio" call --fake "$twilio" --ca "$pki/ca.crt" --account-sid "$twilio_account" --auth-token-file "$twilio_dir/auth-token" \
    --gateway "$telephony_url" --public-url "$telephony_public" --wav "$demo/call.wav" "$@" > "$out"
  python3 - "$out" <<'PY' | show
import json, sys
call = json.load(open(sys.argv[1]))
print(f"call {call['call_sid']}: {call['final_status']}")
for hook in call["webhooks"]:
    print(f"  webhook {hook['url'].split('://', 1)[1].split('/', 1)[1].split('?')[0]}: {hook['status']}")
PY
}
fake_call "$demo/twilio-call.json" --from "+447700900123" --to "+441184960001"
call=$(field call_sid < "$demo/twilio-call.json")
at_twilio=$(sed -n 's/.*"recording_sids" *: *\["\([^"]*\)".*/\1/p' "$demo/twilio-call.json")
for _ in $(seq 1 100); do
  recording=$(ct media recordings list --org "$org" --call "$call" --token "$admin" 2>/dev/null | awk '{print $1}' | head -1)
  gone=$(twilio_status "$twilio/2010-04-01/Accounts/$twilio_account/Recordings/$at_twilio.wav")
  if [ -n "$recording" ] && [ "$gone" = 404 ]; then break; fi
  sleep 0.2
done
ct media recordings list --org "$org" --call "$call" --token "$admin" | show
echo "   at Twilio, recording $at_twilio now answers $gone (deleted once CallTrace held it)"
ct transcript calls show --org "$org" "$call" --token "$admin" | show
proves "the webhooks' signatures checked; transcript said to record and how to route; the recording fetched into media with its SHA-256, then deleted at Twilio (P4, P10)"

step "Its transcript and summary"
echo "   No Deepgram key is configured here, so the gateway submits the text the audio was synthesised from,"
echo "   as its own speech-to-text; the local analyser summarises it (nothing leaves this machine)."
for i in "${!said[@]}"; do printf '[%s] caller: %s\n' "${times[$i]}" "${said[$i]}"; done | ct transcript transcripts submit --as gateway-telephony --org "$org" "$call" | show
for _ in $(seq 1 50); do
  if ct transcript transcripts show --org "$org" "$call" --token "$admin" 2>/dev/null | grep -qi "summary"; then break; fi
  sleep 0.2
done
ct transcript transcripts show --org "$org" "$call" --token "$admin" | show
# The card number's sentence, muted in the recording by media (a durable job asked by transcript).
card_span=${times[1]}
muted() {
  ct media recordings play "$recording" --org "$org" --out "$demo/muted.wav" --token "$admin" >/dev/null 2>&1 || return 1
  python3 - "$demo/muted.wav" "$card_span" <<'PY'
import sys, wave
audio = wave.open(sys.argv[1])
start, end = (float(t) for t in sys.argv[2].split("-"))
rate, width = audio.getframerate(), audio.getsampwidth() * audio.getnchannels()
frames = audio.readframes(audio.getnframes())
span = frames[int(start * rate) * width:int(end * rate) * width]
before = frames[:int(start * rate) * width]
silent = sum(1 for i in range(0, len(span), width) if not any(span[i:i + width]))
if silent * width < len(span) * 0.99 or not any(before): sys.exit(1)
print(f"{silent} of {len(span) // width} samples between {start:.1f} s and {end:.1f} s are now silence; the sentences around it are untouched")
PY
}
for _ in $(seq 1 100); do if muted >/dev/null; then break; fi; sleep 0.2; done
muted | show
proves "the card number was redacted before the transcript was stored and muted in the audio (P16); the summary is the local analyser's"

step "The attribution report, as the analyst sees it"
ct transcript report attribution --org "$org" --from "$(date -d '-30 days' +%F)" --before "$(date -d tomorrow +%F)" --token "$analyst" | show
echo "   the analyst asks for the audio and the transcript:"
if ct media recordings play "$recording" --org "$org" --out "$demo/analyst.wav" --token "$analyst" 2>&1 | show; then :; fi
if ct transcript transcripts show --org "$org" "$call" --token "$analyst" 2>&1 | show; then :; fi
if [ -s "$demo/analyst.wav" ]; then echo "   UNEXPECTED: the analyst played audio"; exit 1; fi
proves "which marketing brought the call (P2); the analyst was refused the audio and the transcript, with the reason (P6)"

step "A share link for the CRM: opened, then revoked"
share=$(ct media recordings share "$recording" --org "$org" --ttl 3600 --note "matter intake" --token "$admin" --json)
token=$(echo "$share" | field token)
ct media recordings open-link --link "$token" --out "$demo/via-link.wav" | show
ct media recordings revoke-link "$(echo "$share" | field linkId)" --org "$org" --token "$admin" | show
echo "   the revoked link, opened again:"
if ct media recordings open-link --link "$token" --out "$demo/revoked.wav" 2>&1 | show; then :; fi
if [ -s "$demo/revoked.wav" ]; then echo "   UNEXPECTED: a revoked link opened"; exit 1; fi
for _ in $(seq 1 50); do  # media forwards its audit events to compliance within moments
  if ct compliance audit list --org "$org" --action share_link.opened --token "$admin" | grep -q share_link; then break; fi
  sleep 0.2
done
echo "   the firm's audit trail holds the open:"
ct compliance audit list --org "$org" --action share_link.opened --token "$admin" | show
proves "signed, expiring, revocable links; every open audited (P7)"

step "The firm calls the caller back; the call announces the recording"
placed=$(ct telephony callback "$call" --org "$org" --token "$admin" --json | field callId)
echo "   Twilio rings the office's phone (the number's first destination) from the firm's number; the fake answers it:"
fake_call "$demo/twilio-callback.json" --answer-placed "$placed"
for _ in $(seq 1 100); do
  if ct transcript calls show --org "$org" "$placed" --token "$admin" 2>/dev/null | grep -qi "answered"; then break; fi
  sleep 0.2
done
ct transcript calls show --org "$org" "$placed" --token "$admin" | show
proves "the member of staff heard why, the caller heard the returned-call greeting before being connected; recorded, linked to the call it returns (P3)"
echo "   A dialler written in C (libcalltrace) reports a returned call the same way, as a telephony gateway:"
"$gateway" 127.0.0.1 "${port[transcript]}" "${port[media]}" "${port[compliance]}" "$pki/gateway-telephony.crt" "$pki/gateway-telephony.key" "$pki/ca.crt" \
  calltrace.demo demo-call-2 "0118 496 0001" "07700 900123" - "$call" | grep -E '^(record|notice|greeting|completed)=' | show
ct transcript calls show --org "$org" demo-call-2 --token "$admin" | show
proves "the C client learnt the greeting to play as the returned call connects; the callback is a call record of its own (P3)"

step "A member of staff at a terminal: the CLI through the web app, with an API token and no certificate"
member=$(printf '%s\n' "$password" | ct identity login --org "$org" --email member@smith.example)
member_token=$(ct identity api-tokens create --org "$org" --name "demo laptop" --permission reports-read --permission transcripts-read --permission calls-mark \
  --days 1 --token "$member" --json | field token)
echo "   (an API token, made as the web app's Account → API tokens page makes it: shown once)"
staff "$member_token" whoami | show
staff "$member_token" calls list | show
if staff "$member_token" users list 2>&1 | show; then echo "   UNEXPECTED: a member listed the firm's users"; exit 1; fi
if staff "$member_token" calls list --client-address 203.0.113.9 2>&1 | show; then echo "   UNEXPECTED: an address was claimed"; exit 1; fi
proves "a firm's staff hold no gateway key: their commands go through the web app as them, from the address it sees (P8)"

step "The caller asks for their data (a subject access request)"
sar=$(ct compliance requests open --org "$org" --kind access --number "07700 900123" --received "$(date +%F)" --nation england-and-wales --token "$admin" --json | field requestId)
ct compliance requests identity "$sar" --org "$org" --result passed --token "$admin" >/dev/null
ct compliance requests locate "$sar" --org "$org" --token "$admin" | show
bundle=$(ct compliance requests bundle "$sar" --org "$org" --token "$admin" --json | field bundleId)
for _ in $(seq 1 100); do
  if ct compliance bundles show "$bundle" --org "$org" --token "$admin" | grep -q ready; then break; fi
  sleep 0.2
done
ct compliance bundles download "$bundle" --org "$org" --out "$demo/access.tar" --token "$admin" | show
tar -tf "$demo/access.tar" | show
ct compliance requests show "$sar" --org "$org" --token "$admin" | show
proves "found by the caller's number through a blind index, exported with its ICO due date (P13)"

step "A retention run"
ct compliance retention set --org "$org" --recordings 12 --transcripts 12 --call-records 24 --token "$admin" | show
ct compliance retention run --org "$org" --wait --token "$admin" | show
proves "the policy is enforced by a durable job with a receipt (P9); nothing here is old enough to go yet"

step "The audit trail verifies"
verified=$(ct compliance audit verify --org "$org" --token "$admin")
echo "$verified" | show
head=$(echo "$verified" | sed -n 's/.*head \([0-9a-f]*\).*/\1/p')
echo "   now one stored event is altered behind the service's back (one byte of its sealed record):"
python3 - "$demo/compliance.sqlite" "$org" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
index, event = db.execute("SELECT chain_index, event FROM audit_chain WHERE org_id = ? ORDER BY chain_index LIMIT 1 OFFSET 2", (sys.argv[2],)).fetchone()
db.execute("UPDATE audit_chain SET event = ? WHERE org_id = ? AND chain_index = ?", (event[:-1] + bytes([event[-1] ^ 1]), sys.argv[2], index))
db.commit()
open(sys.argv[1] + ".altered", "w").write(f"{index}\n{event.hex()}\n")
PY
if ct compliance audit verify --org "$org" --token "$admin" 2>&1 | show; then echo "   UNEXPECTED: the altered chain verified"; exit 1; fi
python3 - "$demo/compliance.sqlite" "$org" <<'PY'
import sqlite3, sys
index, event = open(sys.argv[1] + ".altered").read().split()
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE audit_chain SET event = ? WHERE org_id = ? AND chain_index = ?", (bytes.fromhex(event), sys.argv[2], int(index)))
db.commit()
PY
echo "   put back as it was:"
ct compliance audit verify --org "$org" --token "$admin" | show
proves "every event of the firm, chained: the altered one was named, and the chain verifies once it is back (P15)"

step "The firm leaves: export, confirmation, deletion everywhere, a signed certificate"
offboarding=$(ct compliance offboarding start --org "$org" --token "$admin" --json)
export_bundle=$(echo "$offboarding" | field exportBundleId)
for _ in $(seq 1 100); do
  if ct compliance bundles show "$export_bundle" --org "$org" --token "$admin" | grep -q ready; then break; fi
  sleep 0.2
done
ct compliance bundles download "$export_bundle" --org "$org" --out "$demo/export.tar" --token "$admin" | show
ct compliance offboarding confirm --org "$org" --id "$(echo "$offboarding" | field offboardingId)" --confirm-org "$org" \
  --certificate-out "$demo/certificate.txt" --token "$admin" | show
# The CLI pins the deployment's signing key on first use; the demo's deployment is new each run.
export CALLTRACE_SIGNING_KEY="$demo/pinned-signing-key.pub"
ct compliance offboarding signing-key --as operator-admin | awk 'NR == 1 {print $1}' > "$demo/signing.pub"
"$bin/calltrace" verify-certificate "$demo/certificate.txt" --public-key "$demo/signing.pub" | show
echo "   chain head when verified above (before the offboarding's own events): $head"
echo "   chain head when the chain was deleted, as the certificate records it (after them):"
grep -E '"audit_(chain_head|events_purged)"' "$demo/certificate.txt" | show
echo "   each service's key for the firm, as the certificate records it:"
grep -E '"keys"' "$demo/certificate.txt" | show
python3 - "$demo" "$org" <<'PY'
import sqlite3, sys
for service in ["identity", "media", "transcript", "compliance"]:
    store = sqlite3.connect(f"{sys.argv[1]}/keys/{service}.keys.sqlite")
    left = store.execute("SELECT count(*) FROM org_keys WHERE org_id = ?", (sys.argv[2],)).fetchone()[0]
    print(f"   {service}: {left} key(s) for the firm left in its key store")
    if left: sys.exit(1)
PY
echo "   and the admin's session, shown to identity again (the other services forget an allowed token within 5 s):"
if ct identity whoami --org "$org" --token "$admin" 2>&1 | show; then echo "   UNEXPECTED: the offboarded firm's session still works"; exit 1; fi
proves "media, transcript, compliance and identity purged the firm and destroyed its keys: what is left in any backup cannot be read (P11)"

step "Done"
echo "   everything this run made is under $demo; the services are stopping now."
