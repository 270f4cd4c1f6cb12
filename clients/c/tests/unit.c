/*
 * calltrace-unit-test [CHECK...]
 *
 * libcalltrace against a ctrpc/1 server of this program's own, on a thread, over real TLS with
 * a PKI made here (a CA, the server's and the gateway's certificates, revocation lists): no
 * CallTrace service needed, so `make -C clients/c unit-test` runs it anywhere. The server
 * answers StartCall (with a 64-character organisation id), Health and UploadRecording (refusing
 * it, as media refuses a malformed call id, after decoding its header), and leaves any other
 * method unanswered. CHECKs (all when none are named):
 *   header      an upload whose call id is 2 MiB arrives whole and is refused by the server;
 *               call ids and org ids too large for a frame are refused before anything is sent
 *               (INVALID_ARGUMENT naming the frame limit).
 *   detached    calls begun and not freed outlive ct_client_free: their results say CANCELLED,
 *               a stream's send fails and its finish frees it, ct_call_free frees the rest.
 *   org_id      StartCall's 64-character org id comes back whole.
 *   revocation  with a revocation list naming the server's certificate the client refuses it
 *               (UNAUTHENTICATED, "certificate revoked", not retried); with one naming another
 *               certificate it calls; a missing, expired or foreign list, or one naming the
 *               gateway's own certificate, makes ct_client_new fail (INVALID_ARGUMENT, crl_file).
 * Prints `CHECK=1` or `CHECK=0` lines; exits 0 when all hold. Run by the suite under ASan+UBSan
 * and TSan, and by `make -C clients/c SANITIZE=1 unit-test` (or SANITIZE=thread).
 */
#define _GNU_SOURCE /* mkdtemp */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "calltrace.h"
#include "calltrace/media/v1/media.pb-c.h"
#include "calltrace/ops/v1/ops.pb-c.h"
#include "calltrace/rpc/v1/frame.pb-c.h"
#include "calltrace/transcript/v1/transcript.pb-c.h"

#define TRUST_DOMAIN "calltrace.test"
#define SERVER_IDENTITY "spiffe://" TRUST_DOMAIN "/service/media"
#define MAX_FRAME (4u << 20)
/* 64 characters of a-z 0-9 _ -: the longest organisation id there is. */
#define ORG_64 "org_0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"

static int failures;

static int check(const char *what, int holds, const char *detail) {
    if (!holds) {
        failures++;
        fprintf(stderr, "FAILED %s%s%s\n", what, detail && detail[0] ? ": " : "", detail ? detail : "");
    }
    return holds;
}

/* ---------------------------------------------------------------- the PKI */

static char directory[256];

static char *path_of(const char *name) {
    static char paths[16][320];
    static int next;
    char *path = paths[next++ % 16];
    snprintf(path, sizeof paths[0], "%s/%s", directory, name);
    return path;
}

static void add_extension(X509 *certificate, X509 *issuer, int nid, const char *value) {
    X509V3_CTX context;
    X509V3_set_ctx_nodb(&context);
    X509V3_set_ctx(&context, issuer, certificate, NULL, NULL, 0);
    X509_EXTENSION *extension = X509V3_EXT_conf_nid(NULL, &context, nid, value);
    X509_add_ext(certificate, extension, -1);
    X509_EXTENSION_free(extension);
}

/* A certificate for `key`, signed by `issuer` (self-signed when NULL): a CA, or a leaf naming
 * `uri` as its one URI SAN, as the deployment's PKI issues them. */
static X509 *certificate(EVP_PKEY *key, const char *common_name, const char *uri, long serial, X509 *issuer, EVP_PKEY *issuer_key) {
    X509 *made = X509_new();
    X509_set_version(made, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(made), serial);
    X509_gmtime_adj(X509_getm_notBefore(made), -3600);
    X509_gmtime_adj(X509_getm_notAfter(made), 86400);
    X509_set_pubkey(made, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(made), "CN", MBSTRING_ASC, (const unsigned char *)common_name, -1, -1, 0);
    X509_set_issuer_name(made, X509_get_subject_name(issuer ? issuer : made));
    X509 *signer = issuer ? issuer : made;
    add_extension(made, signer, NID_subject_key_identifier, "hash");
    add_extension(made, signer, NID_authority_key_identifier, "keyid");
    if (!issuer) {
        add_extension(made, signer, NID_basic_constraints, "critical,CA:TRUE");
        add_extension(made, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        char san[200];
        snprintf(san, sizeof san, "URI:%s", uri);
        add_extension(made, signer, NID_basic_constraints, "critical,CA:FALSE");
        add_extension(made, signer, NID_key_usage, "critical,digitalSignature");
        add_extension(made, signer, NID_ext_key_usage, "serverAuth,clientAuth");
        add_extension(made, signer, NID_subject_alt_name, san);
    }
    X509_sign(made, issuer_key ? issuer_key : key, EVP_sha256());
    return made;
}

static void write_certificate(X509 *certificate, const char *name) {
    FILE *file = fopen(path_of(name), "w");
    PEM_write_X509(file, certificate);
    fclose(file);
}

static void write_key(EVP_PKEY *key, const char *name) {
    FILE *file = fopen(path_of(name), "w");
    PEM_write_PrivateKey(file, key, NULL, NULL, 0, NULL, NULL);
    fclose(file);
}

/* A revocation list of `ca` naming `serials`, issued `issued_days` from now, valid for `valid_days`. */
static void write_crl(X509 *ca, EVP_PKEY *ca_key, const long *serials, int count, int issued_days, int valid_days, const char *name) {
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
    time_t now = time(NULL);
    ASN1_TIME *issued = ASN1_TIME_adj(NULL, now, issued_days, 0), *next = ASN1_TIME_adj(NULL, now, issued_days + valid_days, 0);
    X509_CRL_set1_lastUpdate(crl, issued);
    X509_CRL_set1_nextUpdate(crl, next);
    for (int i = 0; i < count; i++) {
        X509_REVOKED *entry = X509_REVOKED_new();
        ASN1_INTEGER *serial = ASN1_INTEGER_new();
        ASN1_INTEGER_set(serial, serials[i]);
        X509_REVOKED_set_serialNumber(entry, serial);
        X509_REVOKED_set_revocationDate(entry, issued);
        X509_CRL_add0_revoked(crl, entry);
        ASN1_INTEGER_free(serial);
    }
    X509_CRL_sort(crl);
    X509_CRL_sign(crl, ca_key, EVP_sha256());
    FILE *file = fopen(path_of(name), "w");
    PEM_write_X509_CRL(file, crl);
    fclose(file);
    ASN1_TIME_free(issued);
    ASN1_TIME_free(next);
    X509_CRL_free(crl);
}

enum { CA_SERIAL = 1, SERVER_SERIAL = 2, GATEWAY_SERIAL = 3, OTHER_SERIAL = 4 };

static void make_pki(void) {
    EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *server_key = EVP_EC_gen("P-256"), *gateway_key = EVP_EC_gen("P-256"),
             *foreign_key = EVP_EC_gen("P-256");
    X509 *ca = certificate(ca_key, "CallTrace test CA", NULL, CA_SERIAL, NULL, NULL);
    X509 *foreign = certificate(foreign_key, "CallTrace test CA", NULL, CA_SERIAL, NULL, NULL);  /* same name, another key */
    X509 *server = certificate(server_key, "media", SERVER_IDENTITY, SERVER_SERIAL, ca, ca_key);
    X509 *gateway = certificate(gateway_key, "gateway", "spiffe://" TRUST_DOMAIN "/gateway/telephony", GATEWAY_SERIAL, ca, ca_key);
    write_certificate(ca, "ca.crt");
    write_certificate(server, "server.crt");
    write_key(server_key, "server.key");
    write_certificate(gateway, "gateway.crt");
    write_key(gateway_key, "gateway.key");
    long other = OTHER_SERIAL, revoked_server = SERVER_SERIAL, revoked_gateway = GATEWAY_SERIAL;
    write_crl(ca, ca_key, &other, 1, 0, 30, "keeping.crl");             /* names another certificate */
    write_crl(ca, ca_key, &revoked_server, 1, 0, 30, "revoking.crl");   /* names the server's */
    write_crl(ca, ca_key, &revoked_gateway, 1, 0, 30, "own.crl");       /* names the gateway's own */
    write_crl(ca, ca_key, &other, 1, -60, 30, "expired.crl");           /* next update 30 days ago */
    write_crl(foreign, foreign_key, &other, 1, 0, 30, "foreign.crl");   /* another CA's, by the same name */
    FILE *file = fopen(path_of("garbage.crl"), "w");
    fputs("-----BEGIN X509 CRL-----\nnot a list\n-----END X509 CRL-----\n", file);
    fclose(file);
    X509_free(ca);
    X509_free(foreign);
    X509_free(server);
    X509_free(gateway);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(gateway_key);
    EVP_PKEY_free(foreign_key);
}

static void remove_pki(void) {
    const char *names[] = {"ca.crt", "server.crt", "server.key", "gateway.crt", "gateway.key", "keeping.crl", "revoking.crl",
                           "own.crl", "expired.crl", "foreign.crl", "garbage.crl", "recording.wav"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) unlink(path_of(names[i]));
    rmdir(directory);
}

/* ---------------------------------------------------------------- the server
 *
 * One connection at a time, each until the client closes it: the checks run one client at a
 * time. What it saw is kept in atomics the checks read.
 */

static int listener = -1, port;
static SSL_CTX *server_context;
static pthread_t server_thread;
static atomic_int calls_seen, handshakes_refused;
static atomic_long upload_call_id_bytes;

static int read_exactly(SSL *ssl, uint8_t *into, size_t size) {
    for (size_t got = 0; got < size;) {
        int n = SSL_read(ssl, into + got, size - got > (1u << 30) ? 1 << 30 : (int)(size - got));
        if (n <= 0) return 0;
        got += (size_t)n;
    }
    return 1;
}

static int send_frame(SSL *ssl, const Calltrace__Rpc__V1__Frame *frame) {
    size_t size = calltrace__rpc__v1__frame__get_packed_size(frame);
    uint8_t *packed = malloc(size + 4);
    if (!packed) return 0;
    packed[0] = (uint8_t)(size >> 24);
    packed[1] = (uint8_t)(size >> 16);
    packed[2] = (uint8_t)(size >> 8);
    packed[3] = (uint8_t)size;
    calltrace__rpc__v1__frame__pack(frame, packed + 4);
    int sent = SSL_write(ssl, packed, (int)size + 4) == (int)size + 4;
    free(packed);
    return sent;
}

/* The next frame, or NULL when the client closed (or broke the protocol). */
static Calltrace__Rpc__V1__Frame *next_frame(SSL *ssl) {
    uint8_t header[4];
    if (!read_exactly(ssl, header, 4)) return NULL;
    uint32_t length = (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
    if (length > MAX_FRAME) {
        fprintf(stderr, "server: a frame of %u bytes, over our limit\n", length);
        return NULL;
    }
    uint8_t *body = malloc(length ? length : 1);
    Calltrace__Rpc__V1__Frame *frame = body && read_exactly(ssl, body, length) ? calltrace__rpc__v1__frame__unpack(NULL, length, body) : NULL;
    free(body);
    return frame;
}

/* Answers call `id` with `code`, and with `message` (packed by `pack`) when given. */
static void answer(SSL *ssl, uint64_t id, int code, const char *text, const ProtobufCMessage *message) {
    Calltrace__Rpc__V1__Status status;
    calltrace__rpc__v1__status__init(&status);
    status.code = (uint32_t)code;
    status.message = (char *)text;
    Calltrace__Rpc__V1__Frame frame;
    calltrace__rpc__v1__frame__init(&frame);
    frame.call_id = id;
    frame.status = &status;
    uint8_t packed[512];
    if (message) {
        frame.payload_case = CALLTRACE__RPC__V1__FRAME__PAYLOAD_MESSAGE;
        frame.message.data = packed;
        frame.message.len = protobuf_c_message_pack(message, packed);
    }
    send_frame(ssl, &frame);
}

static void serve(SSL *ssl) {
    Calltrace__Rpc__V1__Settings settings;
    calltrace__rpc__v1__settings__init(&settings);
    settings.max_frame_bytes = MAX_FRAME;
    settings.initial_window_bytes = 1u << 20;
    settings.max_concurrent_calls = 256;
    Calltrace__Rpc__V1__Frame hello;
    calltrace__rpc__v1__frame__init(&hello);
    hello.settings = &settings;
    if (!send_frame(ssl, &hello)) return;
    Calltrace__Rpc__V1__Frame *frame;
    while ((frame = next_frame(ssl))) {
        if (frame->header) {
            atomic_fetch_add(&calls_seen, 1);
            const char *method = frame->header->method;
            if (strcmp(method, "/calltrace.transcript.v1.CallService/StartCall") == 0) {
                Calltrace__Transcript__V1__StartCallResponse started;
                calltrace__transcript__v1__start_call_response__init(&started);
                started.org_id = ORG_64;
                started.record = 1;
                started.notice = "This call is recorded.";
                answer(ssl, frame->call_id, CT_OK, "", &started.base);
            } else if (strcmp(method, "/calltrace.ops.v1.HealthService/Check") == 0) {
                Calltrace__Ops__V1__CheckResponse health;
                calltrace__ops__v1__check_response__init(&health);
                health.status = CALLTRACE__OPS__V1__SERVING_STATUS__SERVING_STATUS_SERVING;
                answer(ssl, frame->call_id, CT_OK, "", &health.base);
            } else if (strcmp(method, "/calltrace.media.v1.RecordingService/UploadRecording") == 0) {
                Calltrace__Media__V1__UploadRecordingRequest *part =
                    calltrace__media__v1__upload_recording_request__unpack(NULL, frame->message.len, frame->message.data);
                long bytes = part && part->part_case == CALLTRACE__MEDIA__V1__UPLOAD_RECORDING_REQUEST__PART_HEADER ? (long)strlen(part->header->call_id) : -1;
                atomic_store(&upload_call_id_bytes, bytes);
                if (part) calltrace__media__v1__upload_recording_request__free_unpacked(part, NULL);
                answer(ssl, frame->call_id, CT_INVALID_ARGUMENT, "call_id must be 1 to 128 of A-Z a-z 0-9 - _ . :", NULL);
            }  /* anything else: never answered */
        }
        calltrace__rpc__v1__frame__free_unpacked(frame, NULL);
    }
}

static int select_ctrpc(SSL *ssl, const unsigned char **out, unsigned char *out_size, const unsigned char *in, unsigned int in_size, void *unused) {
    (void)ssl;
    (void)unused;
    static const unsigned char ctrpc[] = {7, 'c', 't', 'r', 'p', 'c', '/', '1'};
    return SSL_select_next_proto((unsigned char **)out, out_size, ctrpc, sizeof ctrpc, in, in_size) == OPENSSL_NPN_NEGOTIATED
               ? SSL_TLSEXT_ERR_OK
               : SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void *server_main(void *unused) {
    (void)unused;
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) break;  /* the listener was shut down: the checks are over */
        SSL *ssl = SSL_new(server_context);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1) {
            serve(ssl);
            SSL_shutdown(ssl);
        } else {
            atomic_fetch_add(&handshakes_refused, 1);
        }
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
    }
    return NULL;
}

static int start_server(void) {
    server_context = SSL_CTX_new(TLS_server_method());
    if (!server_context || SSL_CTX_use_certificate_chain_file(server_context, path_of("server.crt")) != 1 ||
        SSL_CTX_use_PrivateKey_file(server_context, path_of("server.key"), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_file(server_context, path_of("ca.crt")) != 1) {
        return 0;
    }
    SSL_CTX_set_verify(server_context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_alpn_select_cb(server_context, select_ctrpc, NULL);
    listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t size = sizeof address;
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 16) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &size) != 0) {
        return 0;
    }
    port = ntohs(address.sin_port);
    return pthread_create(&server_thread, NULL, server_main, NULL) == 0;
}

static void stop_server(void) {
    shutdown(listener, SHUT_RDWR);  /* accept returns */
    pthread_join(server_thread, NULL);
    close(listener);
    SSL_CTX_free(server_context);
}

/* ---------------------------------------------------------------- the checks */

static ct_client *client_with(const char *crl_name, ct_status *status) {
    ct_config config = {0};
    config.host = "127.0.0.1";
    config.port = port;
    config.certificate_file = path_of("gateway.crt");
    config.private_key_file = path_of("gateway.key");
    config.ca_file = path_of("ca.crt");
    config.server_identity = SERVER_IDENTITY;
    config.timeout_ms = 5000;
    config.crl_file = crl_name ? path_of(crl_name) : NULL;
    return ct_client_new(&config, status);
}

static char *repeated(char letter, size_t count) {
    char *text = malloc(count + 1);
    if (!text) abort();
    memset(text, letter, count);
    text[count] = 0;
    return text;
}

static int header(void) {
    int before = failures;
    ct_status status;
    ct_client *client = client_with(NULL, &status);
    if (!check("header: client", client != NULL, status.message)) return 0;
    const char *file = path_of("recording.wav");
    int fd = open(file, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    static const uint8_t audio[4096];
    check("header: recording file", fd >= 0 && write(fd, audio, sizeof audio) == (ssize_t)sizeof audio, NULL);
    ct_recording recording = {0};
    recording.org_id = ORG_64;
    recording.format = CT_WAV_PCM16;
    recording.sample_rate_hz = 8000;
    recording.channels = 1;
    char recording_id[64];

    /* 2 MiB: inside a frame, so sent whole; media refuses such a call id. */
    char *long_id = repeated('c', 2u << 20);
    recording.call_id = long_id;
    int code = ct_upload_recording(client, fd, &recording, recording_id, &status);
    check("header: 2 MiB call id refused by the server", code == CT_INVALID_ARGUMENT && strstr(status.message, "call_id must be"), status.message);
    check("header: 2 MiB call id arrived whole", atomic_load(&upload_call_id_bytes) == (long)(2u << 20), NULL);
    free(long_id);

    /* 5 MiB: no frame carries it; refused here, the server sees no call. */
    int seen = atomic_load(&calls_seen);
    char *huge = repeated('c', 5u << 20);
    recording.call_id = huge;
    code = ct_upload_recording(client, fd, &recording, recording_id, &status);
    check("header: 5 MiB call id refused", code == CT_INVALID_ARGUMENT && strstr(status.message, "frame limit") && recording_id[0] == 0, status.message);
    recording.call_id = "pbx-4711";
    recording.org_id = huge;
    code = ct_upload_recording(client, fd, &recording, recording_id, &status);
    check("header: 5 MiB org id refused", code == CT_INVALID_ARGUMENT && strstr(status.message, "frame limit"), status.message);
    check("header: nothing sent for them", atomic_load(&calls_seen) == seen, NULL);
    free(huge);

    /* The client still works. */
    int serving = 0;
    code = ct_health(client, NULL, &serving, &status);
    check("header: a call after them", code == CT_OK && serving, status.message);
    if (fd >= 0) close(fd);
    ct_client_free(client);
    return failures == before;
}

static int detached(void) {
    int before = failures;
    ct_status status;
    ct_client *client = client_with(NULL, &status);
    if (!check("detached: client", client != NULL, status.message)) return 0;
    uint8_t request[1] = {0}, *response = NULL;
    size_t size = 0;
    ct_call *result_taken = NULL, *never_asked = NULL, *stream = NULL, *answered = NULL;
    int code = ct_call_begin(client, "/calltrace.testing.v1.Hold/Forever", NULL, 0, request, 0, &result_taken, &status);
    check("detached: begin", code == CT_OK, status.message);
    code = ct_call_begin(client, "/calltrace.testing.v1.Hold/Forever", NULL, 0, request, 0, &never_asked, &status);
    check("detached: begin another", code == CT_OK, status.message);
    code = ct_stream_begin(client, "/calltrace.testing.v1.Hold/Stream", NULL, 0, request, 0, &stream, &status);
    check("detached: begin a stream", code == CT_OK, status.message);
    code = ct_call_begin(client, "/calltrace.ops.v1.HealthService/Check", NULL, 0, request, 0, &answered, &status);
    check("detached: begin a health call", code == CT_OK, status.message);
    for (int i = 0; i < 500 && answered && ct_call_result(answered, &response, &size, &status) == CT_PENDING; i++) {
        struct pollfd ready = {.fd = ct_client_event_fd(client), .events = POLLIN};
        poll(&ready, 1, 10);
        uint64_t count;
        if (ready.revents & POLLIN && read(ready.fd, &count, sizeof count) < 0) break;
    }
    check("detached: the health call answered", response != NULL, status.message);
    free(response);
    response = NULL;
    code = result_taken ? ct_call_result(result_taken, &response, &size, &status) : CT_OK;
    check("detached: pending before", code == CT_PENDING, NULL);

    ct_client_free(client);

    code = result_taken ? ct_call_result(result_taken, &response, &size, &status) : CT_OK;
    check("detached: the call ended with the client", code == CT_CANCELLED && strstr(status.message, "the client was freed") && !response, status.message);
    code = result_taken ? ct_call_result(result_taken, &response, &size, &status) : CT_OK;
    check("detached: its result taken once", code == CT_CANCELLED && strstr(status.message, "already taken"), status.message);
    code = stream ? ct_stream_send(stream, request, 1, &status) : CT_OK;
    check("detached: a stream's send fails", code == CT_CANCELLED, status.message);
    code = stream ? ct_stream_finish(stream, &response, &size, &status) : CT_OK;
    check("detached: a stream's finish gives its end", code == CT_CANCELLED && strstr(status.message, "the client was freed"), status.message);
    ct_call_free(result_taken);
    ct_call_free(never_asked);
    ct_call_free(answered);  /* its result was taken before the client went */
    return failures == before;
}

static int org_id(void) {
    int before = failures;
    ct_status status;
    ct_client *client = client_with(NULL, &status);
    if (!check("org_id: client", client != NULL, status.message)) return 0;
    ct_call_start call = {.call_id = "pbx-4711", .tracking_number = "0118 496 0000", .caller_number = "07700 900123", .direction = CT_INBOUND};
    ct_call_started started;
    int code = ct_start_call(client, &call, &started, &status);
    check("org_id: start call", code == CT_OK, status.message);
    check("org_id: all 64 characters", code == CT_OK && strlen(started.org_id) == 64 && strcmp(started.org_id, ORG_64) == 0, started.org_id);
    ct_call_started_free(&started);
    ct_client_free(client);
    return failures == before;
}

static int revocation(void) {
    int before = failures;
    ct_status status;
    int serving = 0, refused = atomic_load(&handshakes_refused);

    ct_client *client = client_with("keeping.crl", &status);
    if (check("revocation: a list naming another certificate is taken", client != NULL, status.message)) {
        int code = ct_health(client, NULL, &serving, &status);
        check("revocation: its server is called", code == CT_OK && serving, status.message);
        ct_client_free(client);
    }

    client = client_with("revoking.crl", &status);
    if (check("revocation: a list naming the server's certificate is taken", client != NULL, status.message)) {
        int code = ct_health(client, NULL, &serving, &status);
        check("revocation: the revoked server is refused", code == CT_UNAUTHENTICATED && strstr(status.message, "certificate revoked"), status.message);
        ct_client_free(client);
    }
    /* The server's side of the refusal happens on its thread: wait for it to count it. */
    for (int i = 0; i < 500 && atomic_load(&handshakes_refused) == refused; i++) {
        struct timespec pause = {0, 10 * 1000000L};
        nanosleep(&pause, NULL);
    }
    check("revocation: one handshake, not retried", atomic_load(&handshakes_refused) == refused + 1, NULL);

    const char *unusable[][2] = {
        {"missing.crl", "crl_file"}, {"garbage.crl", "crl_file"}, {"expired.crl", "CRL has expired"},
        {"foreign.crl", "crl_file"}, {"own.crl", "certificate revoked"},
    };
    for (size_t i = 0; i < sizeof unusable / sizeof *unusable; i++) {
        memset(&status, 0, sizeof status);
        client = client_with(unusable[i][0], &status);
        char what[128];
        snprintf(what, sizeof what, "revocation: %s refused by ct_client_new", unusable[i][0]);
        check(what, !client && status.code == CT_INVALID_ARGUMENT && strstr(status.message, "crl_file") && strstr(status.message, unusable[i][1]),
              status.message);
        ct_client_free(client);
    }
    return failures == before;
}

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*run)(void);
    } checks[] = {{"header", header}, {"detached", detached}, {"org_id", org_id}, {"revocation", revocation}};
    const char *temporary = getenv("TMPDIR");
    snprintf(directory, sizeof directory, "%s/calltrace-unit-XXXXXX", temporary && temporary[0] ? temporary : "/tmp");
    if (!mkdtemp(directory)) {
        perror("mkdtemp");
        return 2;
    }
    make_pki();
    if (!start_server()) {
        fprintf(stderr, "cannot start the test server: %s\n", ERR_reason_error_string(ERR_get_error()));
        remove_pki();
        return 2;
    }
    for (size_t i = 0; i < sizeof checks / sizeof *checks; i++) {
        int named = argc < 2;
        for (int a = 1; a < argc; a++) named |= strcmp(argv[a], checks[i].name) == 0;
        if (named) printf("%s=%d\n", checks[i].name, checks[i].run());
        fflush(stdout);
    }
    stop_server();
    remove_pki();
    return failures == 0 ? 0 : 1;
}
