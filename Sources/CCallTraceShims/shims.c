#define _GNU_SOURCE
#include "CCallTraceShims.h"

#include <string.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ec.h>
#include <openssl/x509v3.h>
#include <openssl/tls1.h>

static const unsigned char ctrpc_alpn_wire[] = { 7, 'c', 't', 'r', 'p', 'c', '/', '1' };

/* OpenSSL frees its global state in an atexit handler. A process that exits while another of
 * its threads still uses OpenSSL (a connection closing as a test run ends, a service's last
 * write after a drain) could then crash in libcrypto, or corrupt the heap, on its way out. Our
 * processes leave that memory to the kernel instead. This runs before main, so before anything
 * else initialises OpenSSL (the first initialisation decides). */
__attribute__((constructor)) static void ctshim_openssl_without_atexit(void) {
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ATEXIT, NULL);
}

int ctshim_ctx_harden(SSL_CTX *ctx) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) return 0;
    /* TLS 1.2: forward-secret AEAD suites only. TLS 1.3 suites are all AEAD. */
    if (SSL_CTX_set_cipher_list(ctx,
            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1) return 0;
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    /* Read whole records (and what follows) in one read(2) instead of header, then body. */
    SSL_CTX_set_read_ahead(ctx, 1);
    return 1;
}

static int client_hello_requires_alpn(SSL *ssl, int *alert, void *arg) {
    (void)arg;
    const unsigned char *ext = NULL;
    size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext, &len) != 1) {
        *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static int select_ctrpc(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                        const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, ctrpc_alpn_wire, sizeof ctrpc_alpn_wire, in, inlen)
            != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

void ctshim_ctx_require_alpn_server(SSL_CTX *ctx) {
    SSL_CTX_set_client_hello_cb(ctx, client_hello_requires_alpn, NULL);
    SSL_CTX_set_alpn_select_cb(ctx, select_ctrpc, NULL);
}

int ctshim_ctx_offer_alpn_client(SSL_CTX *ctx) {
    /* SSL_CTX_set_alpn_protos returns 0 on success. */
    return SSL_CTX_set_alpn_protos(ctx, ctrpc_alpn_wire, sizeof ctrpc_alpn_wire) == 0 ? 1 : 0;
}

int ctshim_ssl_alpn_is_ctrpc(const SSL *ssl) {
    const unsigned char *proto = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &proto, &len);
    return len == sizeof ctrpc_alpn_wire - 1 && memcmp(proto, ctrpc_alpn_wire + 1, len) == 0;
}

int ctshim_x509_spiffe_id(X509 *cert, char *out, size_t capacity) {
    /* An X.509 SVID carries exactly one URI SAN: a certificate naming two identities names none. */
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    if (names == NULL) return -1;
    int result = -1, uris = 0;
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_URI) continue;
        if (++uris > 1) { result = -1; break; }
        const unsigned char *data = ASN1_STRING_get0_data(name->d.uniformResourceIdentifier);
        int len = ASN1_STRING_length(name->d.uniformResourceIdentifier);
        if (len < 9 || memcmp(data, "spiffe://", 9) != 0) continue;
        if ((size_t)len + 1 > capacity || memchr(data, 0, (size_t)len) != NULL) break;
        memcpy(out, data, (size_t)len);
        out[len] = 0;
        result = len;
    }
    GENERAL_NAMES_free(names);
    return result;
}

EVP_PKEY *ctshim_ec_p256_keygen(void) {
    return EVP_EC_gen("P-256");
}


EVP_PKEY *ctshim_read_ec_private_key(const char *path) {
    ERR_set_mark();
    EVP_PKEY *key = NULL;
    BIO *file = BIO_new_file(path, "r");
    OSSL_DECODER_CTX *decoder = file ? OSSL_DECODER_CTX_new_for_pkey(&key, "PEM", NULL, "EC", EVP_PKEY_KEYPAIR, NULL, NULL) : NULL;
    if (!decoder || OSSL_DECODER_from_bio(decoder, file) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    OSSL_DECODER_CTX_free(decoder);
    BIO_free(file);
    ERR_pop_to_mark();
    return key;
}

STACK_OF(X509) *ctshim_ctx_get0_chain_certs(SSL_CTX *ctx) {
    STACK_OF(X509) *chain = NULL;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    return chain;
}

int ctshim_pipe_cloexec(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}

int ctshim_spawn_close_from(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

int ctshim_start_writeback(int fd, long long offset, long long length) {
    return sync_file_range(fd, offset, length, SYNC_FILE_RANGE_WRITE);
}
