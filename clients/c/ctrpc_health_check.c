/*
 * ctrpc_health_check — the seed of the C gateway client library.
 *
 * Calls /calltrace.ops.v1.HealthService/Check over ctrpc/1 (mutual TLS, ALPN "ctrpc/1",
 * 4-byte big-endian length-prefixed protobuf frames), using protoc-c code generated from the
 * same proto/ files as the Swift services, libprotobuf-c and the system OpenSSL.
 *
 *   ctrpc_health_check HOST PORT CERT KEY CA EXPECTED_SPIFFE_ID [SERVICE]
 *
 * Prints SERVING or NOT_SERVING and exits 0 if SERVING, 1 if NOT_SERVING, 2 on any error.
 * Build (as `make -C clients/c check-programs` does, for the suite): this file compiles clean
 * with -Wall -Wextra -Werror; protoc-c's generated files need -Wno-missing-braces as well (their
 * INIT initialisers brace oneof members in a way gcc warns about):
 *   cc -Wall -Wextra -Werror -I clients/c/generated -c clients/c/ctrpc_health_check.c
 *   cc -Wall -Wextra -Werror -Wno-missing-braces -I clients/c/generated -c \
 *      clients/c/generated/calltrace/rpc/v1/frame.pb-c.c clients/c/generated/calltrace/ops/v1/ops.pb-c.c
 *   cc ctrpc_health_check.o frame.pb-c.o ops.pb-c.o -lprotobuf-c -lssl -lcrypto -o ctrpc_health_check
 * libcalltrace (clients/c, `make -C clients/c`) is the library a gateway links; this file stays
 * as the smallest complete ctrpc/1 client, one call in one file.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "calltrace/ops/v1/ops.pb-c.h"
#include "calltrace/rpc/v1/frame.pb-c.h"

#define MAX_FRAME (4u << 20)

static int fail(const char *what) {
    unsigned long code = ERR_get_error();
    fprintf(stderr, "ctrpc_health_check: %s%s%s\n", what, code ? ": " : "",
            code ? ERR_reason_error_string(code) : "");
    return 2;
}

static int write_all(SSL *ssl, const uint8_t *bytes, size_t length) {
    return SSL_write(ssl, bytes, (int)length) == (int)length;
}

/* Writes one frame: 4-byte big-endian length, then the packed Frame, in one SSL_write. */
static int send_frame(SSL *ssl, const Calltrace__Rpc__V1__Frame *frame) {
    size_t size = calltrace__rpc__v1__frame__get_packed_size(frame);
    uint8_t *buffer = malloc(size + 4);
    if (!buffer) return 0;
    buffer[0] = (uint8_t)(size >> 24); buffer[1] = (uint8_t)(size >> 16);
    buffer[2] = (uint8_t)(size >> 8);  buffer[3] = (uint8_t)size;
    calltrace__rpc__v1__frame__pack(frame, buffer + 4);
    int ok = write_all(ssl, buffer, size + 4);
    free(buffer);
    return ok;
}

static int read_exact(SSL *ssl, uint8_t *out, size_t length) {
    size_t done = 0;
    while (done < length) {
        int n = SSL_read(ssl, out + done, (int)(length - done));
        if (n <= 0) return 0;
        done += (size_t)n;
    }
    return 1;
}

/* Reads one frame, refusing a length over MAX_FRAME before allocating. */
static Calltrace__Rpc__V1__Frame *read_frame(SSL *ssl) {
    uint8_t header[4];
    if (!read_exact(ssl, header, 4)) return NULL;
    uint32_t length = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
    if (length > MAX_FRAME) return NULL;
    uint8_t *body = malloc(length ? length : 1);
    if (!body || !read_exact(ssl, body, length)) { free(body); return NULL; }
    Calltrace__Rpc__V1__Frame *frame = calltrace__rpc__v1__frame__unpack(NULL, length, body);
    free(body);
    return frame;
}

/* The first spiffe:// URI SAN of the server's verified certificate must equal `expected`. */
static int peer_is(SSL *ssl, const char *expected) {
    if (SSL_get_verify_result(ssl) != X509_V_OK) return 0;
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer) return 0;
    int match = 0;
    GENERAL_NAMES *names = X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        if (name->type != GEN_URI) continue;
        const char *uri = (const char *)ASN1_STRING_get0_data(name->d.uniformResourceIdentifier);
        int length = ASN1_STRING_length(name->d.uniformResourceIdentifier);
        if (length > 9 && strncmp(uri, "spiffe://", 9) == 0) {
            match = (size_t)length == strlen(expected) && memcmp(uri, expected, (size_t)length) == 0;
            break;
        }
    }
    GENERAL_NAMES_free(names);
    X509_free(peer);
    return match;
}

static int tcp_connect(const char *host, const char *port) {
    struct addrinfo hints = {0}, *list = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &list) != 0) return -1;
    int fd = -1;
    for (struct addrinfo *entry = list; entry; entry = entry->ai_next) {
        fd = socket(entry->ai_family, entry->ai_socktype, entry->ai_protocol);
        if (fd >= 0 && connect(fd, entry->ai_addr, entry->ai_addrlen) == 0) break;
        if (fd >= 0) close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    return fd;
}

static int check(SSL *ssl, const char *service);

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT CERT KEY CA EXPECTED_SPIFFE_ID [SERVICE]\n", argv[0]);
        return 2;
    }
    const char *service = argc > 7 ? argv[7] : "";
    /* A server that refuses our certificate (TLS 1.3 says so only after the handshake) closes
     * the socket under our first write: report it as an error (exit 2), never die of SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    static const unsigned char alpn[] = {7, 'c', 't', 'r', 'p', 'c', '/', '1'};

    /* Every path out frees what it made (the suite runs this under LeakSanitizer). */
    int result = 2, fd = -1;
    SSL *ssl = NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx) SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (!ctx || !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION)) fail("TLS context");
    else if (SSL_CTX_use_certificate_chain_file(ctx, argv[3]) != 1) fail("certificate");
    else if (SSL_CTX_use_PrivateKey_file(ctx, argv[4], SSL_FILETYPE_PEM) != 1) fail("private key");
    else if (SSL_CTX_load_verify_file(ctx, argv[5]) != 1) fail("CA");
    else if (SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn) != 0) fail("ALPN");
    else if ((fd = tcp_connect(argv[1], argv[2])) < 0) fail("connect");
    else if (!(ssl = SSL_new(ctx)) || !SSL_set_fd(ssl, fd) || SSL_connect(ssl) != 1) fail("TLS handshake");
    else if (!peer_is(ssl, argv[6])) fail("server identity is not the expected one");
    else result = check(ssl, service);
    if (ssl && result != 2) SSL_shutdown(ssl);
    SSL_free(ssl);
    if (fd >= 0) close(fd);
    SSL_CTX_free(ctx);
    return result;
}

/* Settings, one HealthService/Check call, and its answer: 0 SERVING, 1 NOT_SERVING, 2 error. */
static int check(SSL *ssl, const char *service) {
    /* Our settings first, as every ctrpc/1 peer does. */
    Calltrace__Rpc__V1__Settings settings;
    calltrace__rpc__v1__settings__init(&settings);
    settings.max_frame_bytes = MAX_FRAME;
    settings.initial_window_bytes = 1u << 20;
    Calltrace__Rpc__V1__Frame hello;
    calltrace__rpc__v1__frame__init(&hello);
    hello.settings = &settings;
    if (!send_frame(ssl, &hello)) return fail("send settings");

    /* One unary call: header, request message and end of stream in one frame. */
    Calltrace__Ops__V1__CheckRequest request;
    calltrace__ops__v1__check_request__init(&request);
    request.service = (char *)service;
    uint8_t packed[512];
    size_t packed_size = calltrace__ops__v1__check_request__get_packed_size(&request);
    if (packed_size > sizeof packed) return fail("service name too long");
    calltrace__ops__v1__check_request__pack(&request, packed);

    Calltrace__Rpc__V1__CallHeader header;
    calltrace__rpc__v1__call_header__init(&header);
    header.method = "/calltrace.ops.v1.HealthService/Check";
    header.timeout_ms = 5000;
    Calltrace__Rpc__V1__Frame call;
    calltrace__rpc__v1__frame__init(&call);
    call.call_id = 1;
    call.header = &header;
    call.payload_case = CALLTRACE__RPC__V1__FRAME__PAYLOAD_MESSAGE;
    call.message.data = packed;
    call.message.len = packed_size;
    call.end_stream = 1;
    if (!send_frame(ssl, &call)) return fail("send call");

    int result = 2;
    for (;;) {
        Calltrace__Rpc__V1__Frame *frame = read_frame(ssl);
        if (!frame) return fail("connection closed before the answer");
        if (frame->call_id == 1 && frame->status) {
            if (frame->status->code != 0) {
                fprintf(stderr, "ctrpc_health_check: status %u: %s\n", frame->status->code, frame->status->message);
            } else if (frame->payload_case == CALLTRACE__RPC__V1__FRAME__PAYLOAD_MESSAGE) {
                Calltrace__Ops__V1__CheckResponse *response =
                    calltrace__ops__v1__check_response__unpack(NULL, frame->message.len, frame->message.data);
                if (response) {
                    int serving = response->status == CALLTRACE__OPS__V1__SERVING_STATUS__SERVING_STATUS_SERVING;
                    printf("%s\n", serving ? "SERVING" : "NOT_SERVING");
                    result = serving ? 0 : 1;
                    calltrace__ops__v1__check_response__free_unpacked(response, NULL);
                }
            }
            calltrace__rpc__v1__frame__free_unpacked(frame, NULL);
            break;
        }
        calltrace__rpc__v1__frame__free_unpacked(frame, NULL);  /* settings, window updates */
    }
    return result;
}
