/*
 * calltrace-gateway-example — one inbound call as a telephony gateway reports it:
 *
 *   calltrace-gateway-example HOST TRANSCRIPT_PORT MEDIA_PORT COMPLIANCE_PORT CERT KEY CA TRUST_DOMAIN \
 *                             CALL_ID TRACKING_NUMBER CALLER_NUMBER RECORDING.wav [CALLBACK_OF]
 *
 * With CALLBACK_OF the call is the firm returning that earlier call (outbound); RECORDING.wav
 * may then be "-" for a call that is not recorded.
 * Checks each service's health, starts the call (learning whether to record and the notice to
 * play), fetches the callback greeting, uploads the recording (a PCM 16-bit WAV file; its rate and
 * channels read from its header) from its file descriptor, and completes the call. Prints one `key=value` line per result; exits 0
 * when every step succeeded, else 1 with the failing step's status on stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "calltrace.h"

static int failed(const char *step, const ct_status *status) {
    fprintf(stderr, "%s: %s: %s\n", step, ct_code_name(status->code), status->message);
    return 1;
}

static ct_client *connect_to(char **argv, int port, const char *service, ct_status *status) {
    char identity[256];
    snprintf(identity, sizeof identity, "spiffe://%s/service/%s", argv[8], service);
    ct_config config = {0};
    config.host = argv[1];
    config.port = port;
    config.certificate_file = argv[5];
    config.private_key_file = argv[6];
    config.ca_file = argv[7];
    config.server_identity = identity;
    config.timeout_ms = 15000;
    return ct_client_new(&config, status);
}

int main(int argc, char **argv) {
    if (argc != 13 && argc != 14) {
        fprintf(stderr, "usage: %s HOST TRANSCRIPT_PORT MEDIA_PORT COMPLIANCE_PORT CERT KEY CA TRUST_DOMAIN CALL_ID TRACKING CALLER FILE.wav [CALLBACK_OF]\n", argv[0]);
        return 2;
    }
    ct_status status;
    ct_client *transcript = connect_to(argv, atoi(argv[2]), "transcript", &status);
    if (!transcript) return failed("transcript client", &status);
    ct_client *media = connect_to(argv, atoi(argv[3]), "media", &status);
    if (!media) return failed("media client", &status);
    ct_client *compliance = connect_to(argv, atoi(argv[4]), "compliance", &status);
    if (!compliance) return failed("compliance client", &status);

    ct_client *clients[] = {transcript, media, compliance};
    const char *names[] = {"transcript", "media", "compliance"};
    for (int i = 0; i < 3; i++) {
        int serving = 0;
        if (ct_health(clients[i], NULL, &serving, &status) != CT_OK) return failed("health", &status);
        printf("health.%s=%s\n", names[i], serving ? "SERVING" : "NOT_SERVING");
    }

    ct_call_start start = {0};
    start.call_id = argv[9];
    start.tracking_number = argv[10];
    start.caller_number = argv[11];
    start.direction = argc == 14 ? CT_OUTBOUND : CT_INBOUND;
    start.callback_of = argc == 14 ? argv[13] : NULL;
    ct_call_started started;
    if (ct_start_call(transcript, &start, &started, &status) != CT_OK) return failed("start call", &status);
    printf("org=%s\nrecord=%d\nnotice=%s\n", started.org_id, started.record, started.notice);

    char *greeting = NULL;
    if (ct_greeting(compliance, started.org_id, 0, &greeting, &status) != CT_OK) return failed("greeting", &status);
    printf("greeting=%s\n", greeting);
    free(greeting);

    char recording_id[64] = "";
    if (started.record && strcmp(argv[12], "-") != 0) {
        int fd = open(argv[12], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            perror(argv[12]);
            return 1;
        }
        unsigned char header[44];
        if (pread(fd, header, sizeof header, 0) != (ssize_t)sizeof header || memcmp(header, "RIFF", 4) != 0 || memcmp(header + 8, "WAVE", 4) != 0) {
            fprintf(stderr, "%s is not a WAV file\n", argv[12]);
            return 1;
        }
        ct_recording recording = {0};
        recording.org_id = started.org_id;
        recording.call_id = argv[9];
        recording.format = CT_WAV_PCM16;
        recording.channels = (uint32_t)(header[22] | header[23] << 8);
        recording.sample_rate_hz = (uint32_t)header[24] | (uint32_t)header[25] << 8 | (uint32_t)header[26] << 16 | (uint32_t)header[27] << 24;
        int code = ct_upload_recording(media, fd, &recording, recording_id, &status);
        close(fd);
        if (code != CT_OK) return failed("upload", &status);
        printf("recording=%s\n", recording_id);
    }

    ct_call_end end = {0};
    end.call_id = argv[9];
    end.org_id = started.org_id;
    end.outcome = CT_ANSWERED;
    end.answered_at_unix_ms = (int64_t)time(NULL) * 1000;
    end.ended_at_unix_ms = end.answered_at_unix_ms + 60000;
    end.duration_ms = 60000;
    end.recording_id = recording_id[0] ? recording_id : NULL;
    if (ct_complete_call(transcript, &end, &status) != CT_OK) return failed("complete call", &status);
    printf("completed=1\n");

    ct_call_started_free(&started);
    ct_client_free(transcript);
    ct_client_free(media);
    ct_client_free(compliance);
    return 0;
}
