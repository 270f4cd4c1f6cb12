#ifndef CALLTRACE_SHIMS_H
#define CALLTRACE_SHIMS_H

#include <stddef.h>
#include <spawn.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/// The ALPN protocol id of ctrpc/1.
#define CTSHIM_ALPN "ctrpc/1"

/// TLS 1.2 minimum, AEAD-only TLS 1.2 suites, no compression, no renegotiation, partial writes
/// with a moving write buffer, no session tickets, read-ahead. Returns 1 on success.
int ctshim_ctx_harden(SSL_CTX *ctx);

/// Server side: a client hello without ALPN, or without "ctrpc/1" in it, fails the handshake
/// with a no_application_protocol alert.
void ctshim_ctx_require_alpn_server(SSL_CTX *ctx);

/// Client side: offer "ctrpc/1" as the only ALPN protocol. Returns 1 on success.
int ctshim_ctx_offer_alpn_client(SSL_CTX *ctx);

/// 1 when the connection negotiated "ctrpc/1".
int ctshim_ssl_alpn_is_ctrpc(const SSL *ssl);

/// Copies the `spiffe://` URI subject alternative name of `cert` into `out` (NUL terminated).
/// Returns its length, or -1 when the certificate has none, has more than one URI SAN (an SVID
/// names exactly one identity), or it does not fit.
int ctshim_x509_spiffe_id(X509 *cert, char *out, size_t capacity);

/// A fresh P-256 key, or NULL.
EVP_PKEY *ctshim_ec_p256_keygen(void);

/// The PEM EC private key at `path` (PKCS#8 or SEC1, as `calltrace pki` writes), or NULL for
/// any other file, leaving no error queued. A decoder told the format and key type is several
/// times faster in OpenSSL 3.0 than one that tries every decoder (SSL_CTX_use_PrivateKey_file).
EVP_PKEY *ctshim_read_ec_private_key(const char *path);

/// The extra chain certificates loaded with our certificate (SSL_CTX_get0_chain_certs is a macro).
STACK_OF(X509) *ctshim_ctx_get0_chain_certs(SSL_CTX *ctx);

/// A pipe whose both ends close on exec (pipe2 with O_CLOEXEC). Returns 0 on success.
int ctshim_pipe_cloexec(int fds[2]);

/// Starts writing `length` bytes of `fd` from `offset` back to disk without waiting
/// (sync_file_range with SYNC_FILE_RANGE_WRITE), so a later fsync has little left to do.
int ctshim_start_writeback(int fd, long long offset, long long length);

/// Adds "close every descriptor from `from` up" to a posix_spawn file-action list (glibc 2.34+).
int ctshim_spawn_close_from(posix_spawn_file_actions_t *actions, int from);

#endif
