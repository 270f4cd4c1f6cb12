# Sourced by `make demo` and the browser tests: a deployment of its own on this machine, made
# afresh under $deployment_dir — a PKI for $trust_domain, master keys, the four services on
# $first_port..+3, the web gateway on +4 (its pages on $http_port), the telephony gateway on +5
# (Twilio's webhooks on $http_port+1) and a local fake Twilio for it ($http_port+2: Twilio cannot
# be reached from here), a deployment file — all
# started with their standard input on a pipe this shell holds open (CALLTRACE_LIFELINE=stdin):
# however the caller ends, even killed, the pipe closes and they drain and stop. Needs `bin`
# (scripts/build-products.sh); the caller may set `twilio_numbers` (E.164 numbers the fake
# account holds, their webhooks the telephony gateway's). Sets `port` (by name), `pki`, `pids`, CALLTRACE_DEPLOYMENT, and for
# the fake Twilio `twilio` (its URL), `twilio_account`, `twilio_dir` (its 0600 secrets) and
# `telephony_url`/`telephony_public` (where its calls go, and the address they are signed over).
: "${deployment_dir:?}" "${trust_domain:?}" "${first_port:?}" "${http_port:?}"
rm -rf "$deployment_dir"
mkdir -p "$deployment_dir/keys" "$deployment_dir/mail"
chmod 700 "$deployment_dir" "$deployment_dir/keys" "$deployment_dir/mail"
pki="$deployment_dir/pki"
"$bin/calltrace" pki init --trust-domain "$trust_domain" --out "$pki" --ca-out "$deployment_dir/ca" >/dev/null

declare -A port=([identity]=$first_port [media]=$((first_port + 1)) [transcript]=$((first_port + 2))
                 [compliance]=$((first_port + 3)) [web]=$((first_port + 4)) [telephony]=$((first_port + 5)))
mkfifo "$deployment_dir/lifeline"
exec 9<>"$deployment_dir/lifeline"
pids=()
stop_deployment() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_deployment EXIT
# One deployment file tells every service where its peers are, and the CLI where everything is.
cat > "$deployment_dir/deployment.json" <<JSON
{ "services": { "identity": "127.0.0.1:${port[identity]}", "media": "127.0.0.1:${port[media]}",
                "transcript": "127.0.0.1:${port[transcript]}", "compliance": "127.0.0.1:${port[compliance]}" },
  "gateways": { "web": "127.0.0.1:${port[web]}", "telephony": "127.0.0.1:${port[telephony]}" } }
JSON
export CALLTRACE_DEPLOYMENT="$deployment_dir/deployment.json"

# Twilio, played locally: an account of the fake's own (its secrets 0600, as the gateway demands),
# its REST API over TLS with a certificate of the deployment's CA.
twilio_dir="$deployment_dir/twilio"
mkdir -m 700 "$twilio_dir"
twilio_account="AC$(openssl rand -hex 16)"
(umask 077; printf 'SK%s:%s\n' "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" > "$twilio_dir/api-key"
 openssl rand -hex 16 > "$twilio_dir/auth-token")
"$bin/calltrace" pki issue --ca "$deployment_dir/ca" --out "$twilio_dir" --kind service --name fake-twilio >/dev/null
telephony_url="http://127.0.0.1:$((http_port + 1))"
telephony_public="http://localhost:$((http_port + 1))"
twilio_numbers=(${twilio_numbers[@]+"${twilio_numbers[@]/%/,$telephony_public/twilio/voice,$telephony_public/twilio/status}"})
twilio="https://127.0.0.1:$((http_port + 2))"

for s in identity media transcript compliance web telephony; do
  "$bin/calltrace" keys init "$deployment_dir/keys/$s.master-key" >/dev/null
  extra=(); cert="$s"
  if [ "$s" = identity ]; then extra=(--mail-outbox "$deployment_dir/mail"); fi
  if [ "$s" = web ]; then cert=gateway-web; extra=(--http-listen "127.0.0.1:$http_port" --public-url "http://localhost:$http_port" ${web_extra[@]+"${web_extra[@]}"}); fi
  if [ "$s" = telephony ]; then
    cert=gateway-telephony
    extra=(--http-listen "127.0.0.1:$((http_port + 1))" --public-url "$telephony_public" --twilio-account-sid "$twilio_account"
           --twilio-api-key-file "$twilio_dir/api-key" --twilio-auth-token-file "$twilio_dir/auth-token" --twilio-api-url "$twilio"
           --twilio-ca-file "$pki/ca.crt")
  fi
  # 9<&-: the service must not inherit this shell's writing end of its own lifeline, or the
  # pipe would never close while it runs.
  CALLTRACE_LIFELINE=stdin "$bin/calltrace-$s" serve \
    --certificate "$pki/$cert.crt" --private-key "$pki/$cert.key" --ca "$pki/ca.crt" --master-key "$deployment_dir/keys/$s.master-key" \
    --database "$deployment_dir/$s.sqlite" --listen "127.0.0.1:${port[$s]}" "${extra[@]}" <"$deployment_dir/lifeline" 9<&- >>"$deployment_dir/$s.log" 2>&1 &
  pids+=($!)
done
# The fake Twilio last, so `pids` lists the services in `names`' order first.
CALLTRACE_LIFELINE=stdin "$bin/calltrace-fake-twilio" serve --cert "$twilio_dir/fake-twilio.crt" --key "$twilio_dir/fake-twilio.key" --port $((http_port + 2)) \
  --account-sid "$twilio_account" --auth-token-file "$twilio_dir/auth-token" --api-key-file "$twilio_dir/api-key" \
  ${twilio_numbers[@]+"${twilio_numbers[@]/#/--number=}"} <"$deployment_dir/lifeline" 9<&- >"$twilio_dir/url" 2>>"$twilio_dir/fake.log" &
pids+=($!)
deadline=$((SECONDS + 60))
names=(identity media transcript compliance web telephony)
for i in "${!names[@]}"; do
  s=${names[$i]}
  until "$bin/calltrace" health --pki "$pki" --as operator-admin --service "$s" >/dev/null 2>&1; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
      echo "error: calltrace-$s did not start; the end of its log, $deployment_dir/$s.log:" >&2
      tail -n 15 "$deployment_dir/$s.log" | sed 's/^/  /' >&2
      exit 1
    fi
    sleep 0.2
  done
done
# The pages too: the HTTP listener opens just after the gateway reports itself serving.
python3 - "http://127.0.0.1:$http_port/healthz" <<'PY' || { echo "error: the web gateway's pages did not open; its log: $deployment_dir/web.log" >&2; exit 1; }
import sys, time, urllib.request
deadline = time.monotonic() + 30
while True:
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=5) as answer:
            if answer.status == 200: break
    except OSError:
        if time.monotonic() > deadline: raise
        time.sleep(0.1)
PY
# The fake Twilio answers once it printed its URL.
until [ -s "$twilio_dir/url" ]; do
  if ! kill -0 "${pids[-1]}" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "error: the fake Twilio did not start; its log: $twilio_dir/fake.log" >&2
    exit 1
  fi
  sleep 0.1
done
