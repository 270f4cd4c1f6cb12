#!/usr/bin/env bash
# `make check-crypto-deps BIN`: every CallTrace executable in BIN (a build's bin folder) links the
# system OpenSSL and nothing else of TLS or cryptography: no BoringSSL (swift-nio-ssl's or
# swift-crypto's copy), no swift-crypto, no NIOSSL, no swift-certificates. Looks at the symbols
# the executables hold, so a library pulled in by a product's dependencies cannot slip past.
set -euo pipefail
bin=${1:?usage: check-crypto-deps.sh BIN_FOLDER}
forbidden='CNIOBoringSSL|CCryptoBoringSSL|BoringSSL|\$s6NIOSSL|\$s6Crypto[0-9A-Z]|\$s8_CryptoExtras|\$s12X509|\$s15_CertificateInternals|CryptoSwift'
checked=0
failed=0
for exe in "$bin"/calltrace "$bin"/calltrace-* "$bin"/calltracePackageTests.xctest; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  case "$exe" in *.json|*.o|*.swiftmodule|*.resources) continue ;; esac
  checked=$((checked + 1))
  if nm -C --defined-only "$exe" 2>/dev/null | grep -Eq "$forbidden" || nm --defined-only "$exe" 2>/dev/null | grep -Eq "$forbidden"; then
    echo "error: $(basename "$exe") links a second TLS/crypto library:" >&2
    nm --defined-only "$exe" | grep -Eo "$forbidden" | sort | uniq -c | head -5 >&2
    failed=1
  fi
  if ! ldd "$exe" 2>/dev/null | grep -q 'libssl.so.3\|libcrypto.so.3' && nm -D --undefined-only "$exe" 2>/dev/null | grep -q ' SSL_\| EVP_'; then
    echo "error: $(basename "$exe") uses OpenSSL symbols but not the system's libssl/libcrypto" >&2
    failed=1
  fi
done
if [ "$checked" -eq 0 ]; then echo "error: no calltrace executables in $bin; build first" >&2; exit 1; fi
[ "$failed" -eq 0 ] || exit 1
echo "crypto: $checked executables link the system OpenSSL only"
