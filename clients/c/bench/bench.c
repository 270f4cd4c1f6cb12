/*
 * calltrace-c-bench — libcalltrace against ctrpc/1's echo service, in ctrpc-floor's modes and
 * output format, for `calltrace-bench c-client` (which runs both beside each other):
 *
 *   calltrace-c-bench HOST PORT CERT KEY CA SERVER_IDENTITY latency COUNT            -> "latency p50_us p99_us"
 *   calltrace-c-bench HOST PORT CERT KEY CA SERVER_IDENTITY throughput CALLERS SECS  -> "throughput calls_per_second"
 *   calltrace-c-bench HOST PORT CERT KEY CA SERVER_IDENTITY stream MIB               -> "stream mb_per_second"
 *
 * Unary calls carry a 100-byte payload; callers share one client (one multiplexed connection);
 * the stream sends 64 KiB messages.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calltrace.h"
#include "calltrace/testing/v1/echo.pb-c.h"

static ct_client *client;
static uint8_t request[128];
static size_t request_size;
static double until;

static double now_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec * 1e6 + now.tv_nsec / 1e3;
}

static int echo(void) {
    uint8_t *response = NULL;
    size_t size = 0;
    ct_status status;
    int code = ct_call_unary(client, "/calltrace.testing.v1.EchoService/Echo", NULL, 0, request, request_size, 1, &response, &size, &status);
    free(response);
    if (code != CT_OK) fprintf(stderr, "echo: %s: %s\n", ct_code_name(code), status.message);
    return code;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *caller(void *count) {
    long calls = 0;
    while (now_us() < until && echo() == CT_OK) calls++;
    *(long *)count = calls;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: %s HOST PORT CERT KEY CA SERVER_IDENTITY latency COUNT | throughput CALLERS SECS | stream MIB\n", argv[0]);
        return 2;
    }
    ct_config config = {0};
    config.host = argv[1];
    config.port = atoi(argv[2]);
    config.certificate_file = argv[3];
    config.private_key_file = argv[4];
    config.ca_file = argv[5];
    config.server_identity = argv[6];
    config.timeout_ms = 60000;
    ct_status status;
    client = ct_client_new(&config, &status);
    if (!client) {
        fprintf(stderr, "client: %s\n", status.message);
        return 1;
    }
    uint8_t payload[100];
    memset(payload, 7, sizeof payload);
    Calltrace__Testing__V1__EchoRequest message;
    calltrace__testing__v1__echo_request__init(&message);
    message.payload.data = payload;
    message.payload.len = sizeof payload;
    request_size = calltrace__testing__v1__echo_request__pack(&message, request);
    const char *mode = argv[7];
    if (strcmp(mode, "latency") == 0) {
        int count = atoi(argv[8]);
        for (int i = 0; i < count / 10; i++) if (echo() != CT_OK) return 1;
        double *samples = malloc(sizeof *samples * (size_t)count);
        for (int i = 0; i < count; i++) {
            double start = now_us();
            if (echo() != CT_OK) return 1;
            samples[i] = now_us() - start;
        }
        qsort(samples, (size_t)count, sizeof *samples, compare);
        printf("latency %.1f %.1f\n", samples[count / 2], samples[(int)(count * 0.99)]);
        free(samples);
    } else if (strcmp(mode, "throughput") == 0 && argc > 9) {
        int callers = atoi(argv[8]);
        double seconds = atof(argv[9]);
        if (echo() != CT_OK) return 1;  /* connected before the clock starts */
        pthread_t threads[256];
        long counts[256] = {0};
        if (callers < 1 || callers > 256) return 2;
        double start = now_us();
        until = start + seconds * 1e6;
        for (int i = 0; i < callers; i++) pthread_create(&threads[i], NULL, caller, &counts[i]);
        long total = 0;
        for (int i = 0; i < callers; i++) {
            pthread_join(threads[i], NULL);
            total += counts[i];
        }
        printf("throughput %.1f\n", total / ((now_us() - start) / 1e6));
    } else if (strcmp(mode, "stream") == 0) {
        long mib = atol(argv[8]);
        uint8_t *chunk = malloc(64 << 10), *packed = malloc((64 << 10) + 16);
        memset(chunk, 1, 64 << 10);
        Calltrace__Testing__V1__UploadRequest part;
        calltrace__testing__v1__upload_request__init(&part);
        part.chunk.data = chunk;
        part.chunk.len = 64 << 10;
        size_t size = calltrace__testing__v1__upload_request__pack(&part, packed);
        if (echo() != CT_OK) return 1;
        double start = now_us();
        ct_call *call = NULL;
        if (ct_stream_begin(client, "/calltrace.testing.v1.EchoService/Upload", NULL, 0, packed, size, &call, &status) != CT_OK) return 1;
        for (long i = 1; i < mib * 16; i++) {
            if (ct_stream_send(call, packed, size, &status) != CT_OK) break;
        }
        uint8_t *response = NULL;
        size_t response_size = 0;
        if (ct_stream_finish(call, &response, &response_size, &status) != CT_OK) {
            fprintf(stderr, "stream: %s\n", status.message);
            return 1;
        }
        Calltrace__Testing__V1__UploadResponse *answer = calltrace__testing__v1__upload_response__unpack(NULL, response_size, response);
        if (!answer || answer->received_bytes != (uint64_t)mib << 20) {
            fprintf(stderr, "stream: the server received %llu bytes\n", answer ? (unsigned long long)answer->received_bytes : 0ULL);
            return 1;
        }
        printf("stream %.1f\n", (double)(mib << 20) / 1e6 / ((now_us() - start) / 1e6));
        calltrace__testing__v1__upload_response__free_unpacked(answer, NULL);
        free(response);
        free(chunk);
        free(packed);
    } else {
        return 2;
    }
    ct_client_free(client);
    return 0;
}
