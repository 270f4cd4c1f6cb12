/*
 * calltrace-concurrency-test HOST MEDIA_PORT CERT KEY CA TRUST_DOMAIN ORG_ID FILE.wav
 *
 * One client, one connection to media, many calls at once: eight threads making health calls
 * while four more upload FILE, each for a call of its own; then sixteen health calls begun with
 * the non-blocking API and collected through the client's event descriptor; then an upload whose
 * call id is 2 MiB (a SIP Call-ID passed through unchecked), which media must refuse as
 * INVALID_ARGUMENT naming call_id, after which the connection still serves.
 * Prints `key=value` lines (a `recording=` line per upload); exits 0 when every call went as
 * said. Run by the test suite under AddressSanitizer, UndefinedBehaviorSanitizer and
 * ThreadSanitizer.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calltrace.h"

static ct_client *client;
static const char *org, *file;
static int failures;
static pthread_mutex_t failures_lock = PTHREAD_MUTEX_INITIALIZER;

static void failed(const char *what, const ct_status *status) {
    pthread_mutex_lock(&failures_lock);
    failures++;
    fprintf(stderr, "%s: %s: %s\n", what, ct_code_name(status->code), status->message);
    pthread_mutex_unlock(&failures_lock);
}

static void *health_calls(void *unused) {
    (void)unused;
    for (int i = 0; i < 20; i++) {
        ct_status status;
        int serving = 0;
        if (ct_health(client, NULL, &serving, &status) != CT_OK || !serving) failed("health", &status);
    }
    return NULL;
}

#define UPLOADS 4

static void *upload(void *recording_id) {
    static int uploads;
    char call_id[32];
    pthread_mutex_lock(&failures_lock);
    snprintf(call_id, sizeof call_id, "concurrent-%d", ++uploads);
    pthread_mutex_unlock(&failures_lock);
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    ct_recording recording = {0};
    recording.org_id = org;
    recording.call_id = call_id;
    recording.format = CT_WAV_PCM16;
    recording.sample_rate_hz = 8000;
    recording.channels = 1;
    ct_status status;
    if (fd < 0 || ct_upload_recording(client, fd, &recording, recording_id, &status) != CT_OK) failed("upload", &status);
    if (fd >= 0) close(fd);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s HOST MEDIA_PORT CERT KEY CA TRUST_DOMAIN ORG_ID FILE.wav\n", argv[0]);
        return 2;
    }
    char identity[256];
    snprintf(identity, sizeof identity, "spiffe://%s/service/media", argv[6]);
    ct_config config = {0};
    config.host = argv[1];
    config.port = atoi(argv[2]);
    config.certificate_file = argv[3];
    config.private_key_file = argv[4];
    config.ca_file = argv[5];
    config.server_identity = identity;
    config.timeout_ms = 30000;
    org = argv[7];
    file = argv[8];
    ct_status status;
    client = ct_client_new(&config, &status);
    if (!client) {
        failed("client", &status);
        return 1;
    }

    pthread_t threads[8 + UPLOADS];
    char recording_ids[UPLOADS][64] = {""};
    for (int i = 0; i < 8; i++) pthread_create(&threads[i], NULL, health_calls, NULL);
    for (int i = 0; i < UPLOADS; i++) pthread_create(&threads[8 + i], NULL, upload, recording_ids[i]);
    for (int i = 0; i < 8 + UPLOADS; i++) pthread_join(threads[i], NULL);
    printf("threads=%d\n", failures == 0);
    for (int i = 0; i < UPLOADS; i++) printf("recording=%s\n", recording_ids[i]);

    /* The non-blocking API: sixteen calls in flight, collected as the event descriptor fires. */
    ct_call *calls[16];
    uint8_t request[1] = {0};
    for (int i = 0; i < 16; i++) {
        if (ct_call_begin(client, "/calltrace.ops.v1.HealthService/Check", NULL, 0, request, 0, &calls[i], &status) != CT_OK) {
            failed("begin", &status);
            calls[i] = NULL;
        }
    }
    int left = 16, polls = 0;
    while (left > 0 && polls < 1000) {
        struct pollfd event = {.fd = ct_client_event_fd(client), .events = POLLIN};
        if (poll(&event, 1, 5000) <= 0) break;
        uint64_t count;
        if (read(event.fd, &count, sizeof count) < 0) { /* cleared by another reader */ }
        polls++;
        left = 0;
        for (int i = 0; i < 16; i++) {
            if (!calls[i]) continue;
            uint8_t *response = NULL;
            size_t size = 0;
            int code = ct_call_result(calls[i], &response, &size, &status);
            if (code == CT_PENDING) {
                left++;
                continue;
            }
            if (code != CT_OK) failed("non-blocking health", &status);
            free(response);
            ct_call_free(calls[i]);
            calls[i] = NULL;
        }
    }
    printf("nonblocking=%d\nleft=%d\n", failures == 0 && left == 0, left);

    /* A call id far beyond media's 128 characters, yet within a frame: packed whole, refused by media. */
    size_t long_size = 2u << 20;
    char *long_id = malloc(long_size + 1);
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    int code = CT_RESOURCE_EXHAUSTED;
    char recording_id[64] = "";
    if (long_id && fd >= 0) {
        memset(long_id, 'c', long_size);
        long_id[long_size] = 0;
        ct_recording recording = {0};
        recording.org_id = org;
        recording.call_id = long_id;
        recording.format = CT_WAV_PCM16;
        recording.sample_rate_hz = 8000;
        recording.channels = 1;
        code = ct_upload_recording(client, fd, &recording, recording_id, &status);
    }
    free(long_id);
    if (fd >= 0) close(fd);
    printf("long_call_id=%s\n", ct_code_name(code));
    int refused = code == CT_INVALID_ARGUMENT && strstr(status.message, "call_id") != NULL && recording_id[0] == 0;
    if (!refused) failed("2 MiB call id", &status);
    int serving = 0;
    if (ct_health(client, NULL, &serving, &status) != CT_OK || !serving) {
        failed("health after the 2 MiB call id", &status);
        refused = 0;
    }
    printf("long_call_id_refused=%d\n", refused);
    ct_client_free(client);
    return failures == 0 && left == 0 ? 0 : 1;
}
