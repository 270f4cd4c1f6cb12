# Sourced by `make run`, `make demo` and scripts/check-run.sh: builds every executable under services/
# (the four services and the gateways: services/<name>/main.swift is product calltrace-<name>), the fake
# Twilio and the CLI, one product at a time (`swift build` given several --product flags builds only the last),
# with the suite's flags (the Makefile's TEST_BUILD_FLAGS), so after `make test` there is nothing
# left to build. Shows SwiftPM's progress on one line (on a terminal); on a failure, SwiftPM's
# whole output. Sets `bin`.
read -ra build_flags <<< "$(make -s --no-print-directory print-test-build-flags)"
build_log=$(mktemp)
progress() {  # progress PRODUCT: SwiftPM's "[n/m] Compiling ..." lines, each over the last
  local line
  while IFS= read -r line; do
    if [ -t 1 ] && [ "${line:0:1}" = "[" ]; then printf '\r\033[K  %s %.100s' "$1" "$line"; fi
  done
  if [ -t 1 ]; then printf '\r\033[K'; fi
}
echo "building the services and the CLI (the first build takes several minutes)..."
products=()
for main in services/*/main.swift; do name=${main#services/}; products+=("calltrace-${name%/main.swift}"); done
for product in "${products[@]}" calltrace-fake-twilio calltrace; do
  set +e
  swift build "${build_flags[@]}" --product "$product" 2>&1 | tee "$build_log" | progress "$product"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -ne 0 ]; then
    cat "$build_log" >&2
    rm -f "$build_log"
    echo "error: building $product failed (SwiftPM's output above)" >&2
    exit 1
  fi
  echo "  built $product"
done
rm -f "$build_log"
bin=$(swift build "${build_flags[@]}" --show-bin-path)
