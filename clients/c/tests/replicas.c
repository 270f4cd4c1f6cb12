/*
 * calltrace-replicas-test ADDRESSES CERT KEY CA SERVER_IDENTITY
 *
 * A client of a service's replicas (host "host:port,host:port,…", port 0) against the suite's
 * echo servers. ADDRESSES names a port where nothing listens, a listener that never answers
 * (TCP connects, TLS never does), then two servers; the program
 *
 * - makes 40 Record calls, which are not idempotent: each must succeed once, the unreachable
 *   replicas passed over (they never took the call), never sent twice (the suite counts what
 *   each server saw: 40 in all, some on each); the silent one costs a call at most 2 s to find
 *   out, not its 10 s timeout, and the calls after it pass it over (`records_ms`);
 * - runs 20 Echo calls at once through the non-blocking API: the set's one event descriptor
 *   tells of every call's end, whichever replica it went to (a 10 s wait for it fails);
 * - streams an upload of 4 messages to one replica;
 * - checks that malformed lists are refused (CT_INVALID_ARGUMENT) and a bracketed IPv6 address
 *   is taken.
 *
 * Prints `records=`, `nonblocking=`, `stream=`, `refused=` and `ipv6=` lines; exits 0 when all
 * hold. Run by the suite under ASan+UBSan.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calltrace.h"

static const char **arguments;

static ct_client *client_for(const char *host, ct_status *status) {
    ct_config config = {0};
    config.host = host;
    config.port = 0;
    config.certificate_file = arguments[2];
    config.private_key_file = arguments[3];
    config.ca_file = arguments[4];
    config.server_identity = arguments[5];
    config.timeout_ms = 10000;
    return ct_client_new(&config, status);
}

/* A message of one length-delimited field 1 (EchoRequest.payload, RecordRequest.tag, UploadRequest.chunk). */
static size_t field_one(uint8_t *out, const void *bytes, size_t size) {
    out[0] = 0x0A;
    out[1] = (uint8_t)size;  /* under 128 bytes here */
    memcpy(out + 2, bytes, size);
    return size + 2;
}

static double elapsed_ms(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) * 1e3 + (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

static int records(ct_client *client) {
    uint8_t request[64];
    size_t size = field_one(request, "spread", 6);
    int ok = 0;
    for (int i = 0; i < 40; i++) {
        uint8_t *answer = NULL;
        size_t answer_size = 0;
        ct_status status;
        int code = ct_call_unary(client, "/calltrace.testing.v1.EchoService/Record", NULL, 0, request, size, 0, &answer, &answer_size, &status);
        if (code == CT_OK) ok++;
        else fprintf(stderr, "record %d: %s: %s\n", i, ct_code_name(code), status.message);
        free(answer);
    }
    return ok;
}

static int nonblocking(ct_client *client) {
    enum { CALLS = 20 };
    ct_call *calls[CALLS] = {0};
    int results[CALLS];
    uint8_t request[64];
    size_t size = field_one(request, "ping", 4);
    ct_status status;
    for (int i = 0; i < CALLS; i++) {
        results[i] = ct_call_begin(client, "/calltrace.testing.v1.EchoService/Echo", NULL, 0, request, size, &calls[i], &status);
        if (results[i] == CT_OK) results[i] = CT_PENDING;
        else fprintf(stderr, "begin %d: %s: %s\n", i, ct_code_name(results[i]), status.message);
    }
    for (int rounds = 0; rounds < 1000; rounds++) {
        int pending = 0;
        for (int i = 0; i < CALLS; i++) {
            if (results[i] != CT_PENDING) continue;
            uint8_t *answer = NULL;
            size_t answer_size = 0;
            results[i] = ct_call_result(calls[i], &answer, &answer_size, &status);
            free(answer);
            pending += results[i] == CT_PENDING;
        }
        if (!pending) break;
        struct pollfd event = {.fd = ct_client_event_fd(client), .events = POLLIN};
        if (poll(&event, 1, 10000) != 1) {
            fprintf(stderr, "nonblocking: %d calls pending and no event in 10 s\n", pending);
            break;
        }
        uint64_t count;
        if (read(event.fd, &count, sizeof count) < 0) { /* cleared by another reader: fine */ }
    }
    int ok = 0;
    for (int i = 0; i < CALLS; i++) {
        ok += results[i] == CT_OK;
        ct_call_free(calls[i]);
    }
    return ok;
}

static int stream(ct_client *client) {
    uint8_t message[64];
    size_t size = field_one(message, "chunk", 5);
    ct_status status;
    ct_call *call = NULL;
    int code = ct_stream_begin(client, "/calltrace.testing.v1.EchoService/Upload", NULL, 0, message, size, &call, &status);
    for (int i = 0; code == CT_OK && i < 3; i++) code = ct_stream_send(call, message, size, &status);
    uint8_t *answer = NULL;
    size_t answer_size = 0;
    if (call) {
        int finished = ct_stream_finish(call, &answer, &answer_size, &status);
        if (code == CT_OK) code = finished;
    }
    /* UploadResponse: received_bytes (field 1) = 4 chunks of 5 bytes, received_messages (field 2) = 4, then a checksum. */
    int ok = code == CT_OK && answer_size >= 4 && answer[0] == 0x08 && answer[1] == 20 && answer[2] == 0x10 && answer[3] == 4;
    if (!ok) fprintf(stderr, "stream: %s: %s (%zu bytes)\n", ct_code_name(code), code == CT_OK ? "" : status.message, answer_size);
    free(answer);
    return ok;
}

static int refused(void) {
    static const char *const malformed[] = {"127.0.0.1", "127.0.0.1:", ":7000", "127.0.0.1:0", "127.0.0.1:70000", "127.0.0.1:7000,,127.0.0.1:7001",
                                            "[::1:7000", "::1:7000", "a b:7000", "127.0.0.1:7o00", "127.0.0.1:7000,",
                                            "127.0.0.1:123456"};
    int ok = 1;
    ct_status status;
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++) {
        ct_client *client = client_for(malformed[i], &status);
        if (client || status.code != CT_INVALID_ARGUMENT) {
            fprintf(stderr, "not refused: \"%s\" (%s)\n", malformed[i], ct_code_name(status.code));
            ok = 0;
        }
        ct_client_free(client);
    }
    char many[65 * 16] = "";
    for (int i = 0; i < 65; i++) strcat(many, i ? ",127.0.0.1:7000" : "127.0.0.1:7000");
    ct_client *client = client_for(many, &status);
    if (client || strstr(status.message, "at most 64") == NULL) {
        fprintf(stderr, "65 addresses not refused: %s\n", status.message);
        ok = 0;
    }
    ct_client_free(client);
    return ok;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s ADDRESSES CERT KEY CA SERVER_IDENTITY\n", argv[0]);
        return 2;
    }
    arguments = (const char **)argv;
    ct_status status;
    ct_client *client = client_for(argv[1], &status);
    if (!client) {
        fprintf(stderr, "client: %s: %s\n", ct_code_name(status.code), status.message);
        return 1;
    }
    struct timespec started;
    clock_gettime(CLOCK_MONOTONIC, &started);
    int recorded = records(client);
    double records_ms = elapsed_ms(&started);
    int answered = nonblocking(client);
    int streamed = stream(client);
    ct_client_free(client);
    int lists = refused();
    ct_client *six = client_for(" [::1]:7000 ,\t127.0.0.1:7001 ", &status);
    int ipv6 = six != NULL;
    if (!six) fprintf(stderr, "ipv6: %s\n", status.message);
    ct_client_free(six);
    printf("records=%d\nrecords_ms=%.0f\nnonblocking=%d\nstream=%d\nrefused=%d\nipv6=%d\n", recorded, records_ms, answered, streamed, lists, ipv6);
    return recorded == 40 && answered == 20 && streamed && lists && ipv6 ? 0 : 1;
}
