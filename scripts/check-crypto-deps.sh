#!/usr/bin/env bash
# `make check-crypto-deps BIN`: every CallTrace executable in BIN (a build's bin folder) links the
# system OpenSSL and nothing else of TLS or cryptography: no BoringSSL (swift-nio-ssl's or
# swift-crypto's copy), no swift-crypto, no NIOSSL, no swift-certificates. Looks at the symbols
# the executables hold, so a library pulled in by a product's dependencies cannot slip past.
# `check-crypto-deps.sh --self-test` shows it catches one: a small C program defining a BoringSSL
# symbol among 50,000 others must be refused.
set -euo pipefail
if [ "${1:-}" = --self-test ]; then
  folder=$(mktemp -d)
  trap 'rm -rf "$folder"' EXIT
  { for i in $(seq 1 50000); do echo "int filler_$i(void) { return $i; }"; done
    echo 'int CNIOBoringSSL_SSL_new(void) { return 0; } int main(void) { return CNIOBoringSSL_SSL_new(); }'; } > "$folder/fake.c"
  gcc -O0 "$folder/fake.c" -o "$folder/calltrace-fake"
  if bash "$0" "$folder" >/dev/null 2>&1; then echo "error: the check missed a BoringSSL symbol" >&2; exit 1; fi
  echo "crypto check self-test: a BoringSSL symbol among 50,000 is refused"
  exit 0
fi
bin=${1:?usage: check-crypto-deps.sh BIN_FOLDER | --self-test}
forbidden='CNIOBoringSSL|CCryptoBoringSSL|BoringSSL|\$s6NIOSSL|\$s6Crypto[0-9A-Z]|\$s8_CryptoExtras|\$s12X509|\$s15_CertificateInternals|CryptoSwift'
checked=0
failed=0
for exe in "$bin"/calltrace "$bin"/calltrace-* "$bin"/calltracePackageTests.xctest; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  case "$exe" in *.json|*.o|*.swiftmodule|*.resources) continue ;; esac
  checked=$((checked + 1))
  # The symbol lists are read whole before they are searched: `grep -q` stopping at the first
  # match would end nm with SIGPIPE, and under pipefail a found symbol would read as none found.
  symbols=$(nm --defined-only "$exe" 2>/dev/null || true)
  found=$(grep -Eo "$forbidden" <<<"$symbols" | sort | uniq -c || true)
  if [ -n "$found" ]; then
    echo "error: $(basename "$exe") links a second TLS/crypto library:" >&2
    head -5 <<<"$found" >&2
    failed=1
  fi
  libraries=$(ldd "$exe" 2>/dev/null || true)
  undefined=$(nm -D --undefined-only "$exe" 2>/dev/null || true)
  if ! grep -Eq 'libssl\.so\.3|libcrypto\.so\.3' <<<"$libraries" && grep -Eq ' (SSL|EVP)_' <<<"$undefined"; then
    echo "error: $(basename "$exe") uses OpenSSL symbols but not the system's libssl/libcrypto" >&2
    failed=1
  fi
done
if [ "$checked" -eq 0 ]; then echo "error: no calltrace executables in $bin; build first" >&2; exit 1; fi
[ "$failed" -eq 0 ] || exit 1
echo "crypto: $checked executables link the system OpenSSL only"
