/*
 * calltrace-deadline-test HOST PORT CERT KEY CA SERVER_IDENTITY
 *
 * Against the test suite's echo service (whose Echo waits delay_ms before answering): the
 * paths a blocking caller takes when it reads the socket for its own answer.
 *   deadline   a lone call that outlives the client's timeout ends DEADLINE_EXCEEDED at its
 *              deadline, not at the server's answer; the next call on the client succeeds.
 *   handoff    while one thread waits 1.5 s for a slow answer (reading the socket), eight
 *              threads make 25 quick calls each and a non-blocking call is collected through
 *              the event descriptor: every answer reaches its caller.
 *   writers    sixteen threads stream 2 MiB each to Upload at once, beside four threads of
 *              quick calls: the socket fills, frames queue behind the thread writing, and the
 *              unsent end of a write goes out before them. The server's byte count and
 *              checksum of each upload must match what was sent, and every answer its call.
 *   detached   a non-blocking call and a client stream still running when the client is freed
 *              end CANCELLED; their results are taken and they are freed after it.
 * Prints `key=value` lines; exits 0 when all hold. Run by the suite under ASan+UBSan and TSan.
 */
#define _POSIX_C_SOURCE 200809L
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "calltrace.h"
#include "calltrace/testing/v1/echo.pb-c.h"

static ct_client *client;
static int failures;
static pthread_mutex_t failures_lock = PTHREAD_MUTEX_INITIALIZER;

static void failed(const char *what, int code, const char *message) {
    pthread_mutex_lock(&failures_lock);
    failures++;
    fprintf(stderr, "%s: %s: %s\n", what, ct_code_name(code), message);
    pthread_mutex_unlock(&failures_lock);
}

static double now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1e3 + now.tv_nsec / 1e6;
}

/* An Echo request of `payload` answered after `delay_ms`. */
static size_t echo_request(uint8_t *out, const char *payload, uint32_t delay_ms) {
    Calltrace__Testing__V1__EchoRequest message;
    calltrace__testing__v1__echo_request__init(&message);
    message.payload.data = (uint8_t *)payload;
    message.payload.len = strlen(payload);
    message.delay_ms = delay_ms;
    return calltrace__testing__v1__echo_request__pack(&message, out);
}

/* One blocking Echo; CT_OK only when the answer carries `payload` back. */
static int echo(const char *payload, uint32_t delay_ms, ct_status *status) {
    uint8_t request[256], *response = NULL;
    size_t size = 0;
    int code = ct_call_unary(client, "/calltrace.testing.v1.EchoService/Echo", NULL, 0, request, echo_request(request, payload, delay_ms), 0,
                             &response, &size, status);
    if (code == CT_OK) {
        Calltrace__Testing__V1__EchoResponse *answer = calltrace__testing__v1__echo_response__unpack(NULL, size, response);
        if (!answer || answer->payload.len != strlen(payload) || memcmp(answer->payload.data, payload, answer->payload.len) != 0) {
            code = CT_DATA_LOSS;
            snprintf(status->message, sizeof status->message, "another call's answer");
        }
        if (answer) calltrace__testing__v1__echo_response__free_unpacked(answer, NULL);
    }
    free(response);
    return code;
}

static void *slow(void *unused) {
    (void)unused;
    ct_status status;
    int code = echo("slow", 1500, &status);
    if (code != CT_OK) failed("slow", code, status.message);
    return NULL;
}

static void *quick(void *number) {
    char payload[32];
    for (int i = 0; i < 25; i++) {
        snprintf(payload, sizeof payload, "quick-%d-%d", *(int *)number, i);
        ct_status status;
        int code = echo(payload, 0, &status);
        if (code != CT_OK) failed("quick", code, status.message);
    }
    return NULL;
}

#define WRITERS 16
#define WRITER_MESSAGES 32
#define WRITER_CHUNK (64u << 10)

/* FNV-1a 64, as the echo service checksums an upload. */
static uint64_t fnv1a(uint64_t hash, const uint8_t *bytes, size_t size) {
    for (size_t i = 0; i < size; i++) {
        hash ^= bytes[i];
        hash *= 1099511628211ull;
    }
    return hash;
}

static void *writer(void *number) {
    int n = *(int *)number;
    uint8_t *chunk = malloc(WRITER_CHUNK), *packed = malloc(WRITER_CHUNK + 16);
    uint64_t hash = 14695981039346656037ull, sent = 0;
    ct_call *call = NULL;
    ct_status status;
    int code = chunk && packed ? CT_OK : CT_RESOURCE_EXHAUSTED;
    for (int m = 0; code == CT_OK && m < WRITER_MESSAGES; m++) {
        for (size_t i = 0; i < WRITER_CHUNK; i++) chunk[i] = (uint8_t)(n * 31 + m * 7 + (int)(i % 251));
        Calltrace__Testing__V1__UploadRequest message;
        calltrace__testing__v1__upload_request__init(&message);
        message.chunk.data = chunk;
        message.chunk.len = WRITER_CHUNK;
        size_t size = calltrace__testing__v1__upload_request__pack(&message, packed);
        hash = fnv1a(hash, chunk, WRITER_CHUNK);
        sent += WRITER_CHUNK;
        if (m == 0) code = ct_stream_begin(client, "/calltrace.testing.v1.EchoService/Upload", NULL, 0, packed, size, &call, &status);
        else code = ct_stream_send(call, packed, size, &status);
    }
    uint8_t *response = NULL;
    size_t size = 0;
    if (call) {
        int finished = ct_stream_finish(call, &response, &size, &status);
        if (code == CT_OK) code = finished;
    }
    if (code == CT_OK) {
        Calltrace__Testing__V1__UploadResponse *answer = calltrace__testing__v1__upload_response__unpack(NULL, size, response);
        if (!answer || answer->received_bytes != sent || answer->checksum != hash) {
            code = CT_DATA_LOSS;
            snprintf(status.message, sizeof status.message, "upload %d: the server received %llu bytes (of %llu) with another checksum", n,
                     answer ? (unsigned long long)answer->received_bytes : 0ull, (unsigned long long)sent);
        }
        if (answer) calltrace__testing__v1__upload_response__free_unpacked(answer, NULL);
    }
    if (code != CT_OK) failed("writer", code, status.message);
    free(response);
    free(chunk);
    free(packed);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT CERT KEY CA SERVER_IDENTITY\n", argv[0]);
        return 2;
    }
    ct_config config = {0};
    config.host = argv[1];
    config.port = atoi(argv[2]);
    config.certificate_file = argv[3];
    config.private_key_file = argv[4];
    config.ca_file = argv[5];
    config.server_identity = argv[6];
    config.timeout_ms = 300;
    ct_status status;
    client = ct_client_new(&config, &status);
    if (!client) {
        fprintf(stderr, "client: %s\n", status.message);
        return 1;
    }

    /* deadline: the server would answer after 20 s; the caller hears at 300 ms. */
    double started = now_ms();
    int code = echo("late", 20000, &status);
    double waited = now_ms() - started;
    printf("deadline_code=%s\ndeadline_ms=%.0f\n", ct_code_name(code), waited);
    if (code != CT_DEADLINE_EXCEEDED || waited < 290 || waited > 10000) failed("deadline", code, status.message);
    code = echo("after", 0, &status);
    if (code != CT_OK) failed("after the deadline", code, status.message);
    ct_client_free(client);

    /* handoff: one slow reader, many followers, one non-blocking call. */
    config.timeout_ms = 30000;
    client = ct_client_new(&config, &status);
    if (!client || echo("connect", 0, &status) != CT_OK) {
        fprintf(stderr, "client: %s\n", status.message);
        return 1;
    }
    pthread_t reader, threads[8];
    int numbers[8];
    pthread_create(&reader, NULL, slow, NULL);
    for (int i = 0; i < 8; i++) {
        numbers[i] = i;
        pthread_create(&threads[i], NULL, quick, &numbers[i]);
    }
    uint8_t request[64];
    ct_call *call = NULL;
    code = ct_call_begin(client, "/calltrace.testing.v1.EchoService/Echo", NULL, 0, request, echo_request(request, "nonblocking", 100), &call, &status);
    if (code != CT_OK) failed("begin", code, status.message);
    uint8_t *response = NULL;
    size_t size = 0;
    while (call && (code = ct_call_result(call, &response, &size, &status)) == CT_PENDING) {
        struct pollfd ready = {.fd = ct_client_event_fd(client), .events = POLLIN};
        poll(&ready, 1, 5000);
        uint64_t count;
        if (ready.revents & POLLIN && read(ready.fd, &count, sizeof count) < 0) break;
    }
    if (code != CT_OK) failed("non-blocking", code, status.message);
    free(response);
    ct_call_free(call);
    for (int i = 0; i < 8; i++) pthread_join(threads[i], NULL);
    pthread_join(reader, NULL);
    printf("handoff=%d\n", failures == 0);

    /* writers: many threads write at once, more than the socket takes. */
    pthread_t writers[WRITERS];
    int writer_numbers[WRITERS];
    for (int i = 0; i < WRITERS; i++) {
        writer_numbers[i] = i;
        pthread_create(&writers[i], NULL, writer, &writer_numbers[i]);
    }
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, quick, &numbers[i]);
    for (int i = 0; i < WRITERS; i++) pthread_join(writers[i], NULL);
    for (int i = 0; i < 4; i++) pthread_join(threads[i], NULL);
    ct_client_free(client);
    printf("writers=%d\n", failures == 0);

    /* detached: calls outlive their client, then are freed (before the fix, a use after free). */
    client = ct_client_new(&config, &status);
    if (!client) {
        fprintf(stderr, "client: %s\n", status.message);
        return 1;
    }
    ct_call *slow_call = NULL, *stream = NULL;
    code = ct_call_begin(client, "/calltrace.testing.v1.EchoService/Echo", NULL, 0, request, echo_request(request, "outlives", 20000), &slow_call,
                         &status);
    if (code != CT_OK) failed("detached begin", code, status.message);
    uint8_t chunk[8] = {1, 2, 3, 4, 5, 6, 7, 8}, packed[32];
    Calltrace__Testing__V1__UploadRequest piece;
    calltrace__testing__v1__upload_request__init(&piece);
    piece.chunk.data = chunk;
    piece.chunk.len = sizeof chunk;
    size = calltrace__testing__v1__upload_request__pack(&piece, packed);
    code = ct_stream_begin(client, "/calltrace.testing.v1.EchoService/Upload", NULL, 0, packed, size, &stream, &status);
    if (code != CT_OK) failed("detached stream", code, status.message);
    ct_client_free(client);
    client = NULL;
    response = NULL;
    code = slow_call ? ct_call_result(slow_call, &response, &size, &status) : CT_CANCELLED;
    if (code != CT_CANCELLED) failed("detached result", code, status.message);
    free(response);
    response = NULL;
    code = stream ? ct_stream_finish(stream, &response, &size, &status) : CT_CANCELLED;  /* frees it */
    if (code != CT_CANCELLED) failed("detached stream finish", code, status.message);
    free(response);
    ct_call_free(slow_call);
    printf("detached=%d\n", failures == 0);
    return failures == 0 ? 0 : 1;
}
