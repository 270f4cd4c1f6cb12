/*
 * calltrace-revocation-test HOST PORT CERT KEY CA SERVER_IDENTITY KEEPING_CRL REVOKING_CRL
 *
 * Revocation lists as the deployment's CA signs them (`calltrace pki revoke`), against a real
 * service: with KEEPING_CRL (naming other certificates) the client calls the server; with
 * REVOKING_CRL (naming the server's certificate) it refuses the server at the handshake,
 * UNAUTHENTICATED with "certificate revoked" (`refused_ms` shows it was not retried: a retry
 * waits 100 ms first); with no list at all it calls it (the refusal is the list's doing, not the
 * server's). Prints `kept=`, `refused=` and `unchecked=` lines; exits 0 when all hold. Run by
 * the suite under ASan+UBSan.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calltrace.h"

static const char **arguments;

static ct_client *client_with(const char *crl_file, ct_status *status) {
    ct_config config = {0};
    config.host = arguments[1];
    config.port = atoi(arguments[2]);
    config.certificate_file = arguments[3];
    config.private_key_file = arguments[4];
    config.ca_file = arguments[5];
    config.server_identity = arguments[6];
    config.timeout_ms = 10000;
    config.crl_file = crl_file;
    return ct_client_new(&config, status);
}

/* HealthService/Check through a client with `crl_file`: its code, with `status`. */
static int health(const char *crl_file, ct_status *status) {
    ct_client *client = client_with(crl_file, status);
    if (!client) return status->code;
    int serving = 0;
    int code = ct_health(client, NULL, &serving, status);
    ct_client_free(client);
    return code == CT_OK && !serving ? CT_UNAVAILABLE : code;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: %s HOST PORT CERT KEY CA SERVER_IDENTITY KEEPING_CRL REVOKING_CRL\n", argv[0]);
        return 2;
    }
    arguments = (const char **)argv;
    ct_status status;

    int code = health(argv[7], &status);
    int kept = code == CT_OK;
    printf("kept=%d\n", kept);
    if (!kept) fprintf(stderr, "kept: %s: %s\n", ct_code_name(code), status.message);

    /* Timed: a retry would wait 100 ms or more first (the backoff). */
    struct timespec started, ended;
    clock_gettime(CLOCK_MONOTONIC, &started);
    code = health(argv[8], &status);
    clock_gettime(CLOCK_MONOTONIC, &ended);
    double ms = (double)(ended.tv_sec - started.tv_sec) * 1e3 + (double)(ended.tv_nsec - started.tv_nsec) / 1e6;
    int refused = code == CT_UNAUTHENTICATED && strstr(status.message, "certificate revoked") != NULL;
    printf("refused=%d\nrefused_code=%s\nrefused_ms=%.0f\n", refused, ct_code_name(code), ms);
    if (!refused) fprintf(stderr, "refused: %s: %s\n", ct_code_name(code), status.message);

    code = health(NULL, &status);
    int unchecked = code == CT_OK;
    printf("unchecked=%d\n", unchecked);
    if (!unchecked) fprintf(stderr, "unchecked: %s: %s\n", ct_code_name(code), status.message);
    return kept && refused && unchecked ? 0 : 1;
}
