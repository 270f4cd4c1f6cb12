/*
 * libcalltrace — the CallTrace client for telephony gateways (C, protobuf-c, system OpenSSL).
 *
 * One `ct_client` is one mutually authenticated TLS connection (ALPN "ctrpc/1", docs/PROTOCOL.md)
 * to one CallTrace service, whose SPIFFE identity is checked. It connects on first use and
 * again after the connection is lost. Gateways call transcript (calls), media (recordings)
 * and compliance (greetings), so they keep one client per service.
 *
 * A service run as several replicas: `port` 0 and `host` a list, "10.0.0.5:7103,10.0.0.6:7103"
 * (IPv6 as "[fd00::5]:7103"; at most 64). The client then holds a connection to each replica
 * it calls and sends each call to the next in turn. One that cannot be reached (the call never
 * sent) is passed over, and tried last for 5 s; a call gives each replica but the last at most
 * 2 s to connect, all within its one timeout; an idempotent call that went unanswered
 * (CT_UNAVAILABLE) goes to the next replica; a call that may have run is not sent again. A
 * call begun with ct_call_begin or ct_stream_begin stays on its replica; ct_client_event_fd
 * serves them all.
 *
 * Threads: every function may be called from any thread, and calls from many threads run at
 * once on one client's connection (multiplexed). Once connected, one thread per client does
 * the TLS reading and writing.
 *
 * Errors: functions return 0 on success, else the ctrpc status code (CT_*), with a message in
 * `status` (when not NULL) that never contains tokens or phone numbers. Calls that are
 * idempotent (health, start-call, complete-call, greetings) are retried on CT_UNAVAILABLE
 * with exponential backoff, up to `max_retries` times, as the Swift client does.
 */
#ifndef CALLTRACE_H
#define CALLTRACE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CT_VERSION "1.1.0"

/* ctrpc status codes (gRPC's canonical codes). */
enum {
    CT_OK = 0, CT_CANCELLED = 1, CT_UNKNOWN = 2, CT_INVALID_ARGUMENT = 3, CT_DEADLINE_EXCEEDED = 4, CT_NOT_FOUND = 5,
    CT_ALREADY_EXISTS = 6, CT_PERMISSION_DENIED = 7, CT_RESOURCE_EXHAUSTED = 8, CT_FAILED_PRECONDITION = 9, CT_ABORTED = 10,
    CT_OUT_OF_RANGE = 11, CT_UNIMPLEMENTED = 12, CT_INTERNAL = 13, CT_UNAVAILABLE = 14, CT_DATA_LOSS = 15, CT_UNAUTHENTICATED = 16
};

typedef struct ct_status {
    int code;
    char message[512];
} ct_status;

typedef struct ct_config {
    const char *host;              /* e.g. "127.0.0.1"; with port 0, replicas: "10.0.0.5:7103,10.0.0.6:7103" */
    int port;
    const char *certificate_file;  /* the gateway's PEM certificate chain */
    const char *private_key_file;  /* its PEM key */
    const char *ca_file;           /* the deployment's CA */
    const char *server_identity;   /* e.g. "spiffe://calltrace.example/service/transcript" */
    int timeout_ms;                /* per call attempt; 0: 10 000 */
    int max_retries;               /* idempotent calls on UNAVAILABLE; 0: 3; -1: none */
    /* The deployment CA's PEM certificate revocation list (`calltrace pki crl`), or NULL for no
     * revocation check. When set, a server whose certificate it names is refused
     * (CT_UNAUTHENTICATED, "certificate revoked"), and ct_client_new fails (CT_INVALID_ARGUMENT)
     * on a list that cannot be read, was not signed by ca_file's CA, has expired, or names the
     * gateway's own certificate: revocation fails closed (a list that expires later refuses
     * every server). Read once, by ct_client_new: after `calltrace pki revoke`, make a new
     * client. Last in the struct, so configurations written before it (designated or zero
     * initialisers) leave it NULL. */
    const char *crl_file;
} ct_config;

typedef struct ct_client ct_client;

/* A client for one service; NULL (with `status`) when the configuration or TLS material is
 * unusable. It connects on the first call. */
ct_client *ct_client_new(const ct_config *config, ct_status *status);

/* Closes the connection and frees the client. No other thread may be using the client (or a
 * call of it) meanwhile. Calls begun with ct_call_begin or ct_stream_begin and not yet freed
 * outlive it, detached: those still running end with CT_CANCELLED ("the client was freed");
 * ct_call_result then gives each call's outcome, ct_stream_send fails, ct_stream_finish gives
 * the outcome and frees the call, and ct_call_free frees it. So ct_call_free may come before
 * or after ct_client_free. */
void ct_client_free(ct_client *client);

/* The name of a status code ("UNAVAILABLE"). */
const char *ct_code_name(int code);

/* One metadata entry of a call (e.g. "authorization" = "Bearer …", "x-client-address"). */
typedef struct ct_metadata {
    const char *key;
    const char *value;
} ct_metadata;

/* Any unary call, on serialised protobuf messages: `*response` is malloc'd (free it). */
int ct_call_unary(ct_client *client, const char *method, const ct_metadata *metadata, size_t metadata_count,
                  const uint8_t *request, size_t request_size, int idempotent, uint8_t **response, size_t *response_size,
                  ct_status *status);

/* The non-blocking API, for event loops: begin a unary call, poll the client's event
 * descriptor, take the result when it is there. */
#define CT_PENDING (-1)
typedef struct pending ct_call;

/* Begins a unary call (connecting first if needed, which blocks up to the timeout); `*call`
 * must be given to ct_call_free. Not retried: the caller decides. */
int ct_call_begin(ct_client *client, const char *method, const ct_metadata *metadata, size_t metadata_count, const uint8_t *request,
                  size_t request_size, ct_call **call, ct_status *status);

/* A descriptor (eventfd) that becomes readable when a call begun with ct_call_begin ends; read
 * 8 bytes from it to clear it, then ask ct_call_result of the calls waited for. */
int ct_client_event_fd(ct_client *client);

/* CT_PENDING while the call runs; else its code, with `*response` malloc'd on success (free it).
 * Calls end at their deadline (CT_DEADLINE_EXCEEDED) and when the connection fails (CT_UNAVAILABLE). */
int ct_call_result(ct_call *call, uint8_t **response, size_t *response_size, ct_status *status);

/* Frees the call, cancelling it on the server if it still runs; also after ct_client_free
 * (see there). */
void ct_call_free(ct_call *call);

/* Client streaming, for any method: begin with the first message, send more (each waits for
 * the server's flow-control window), then finish for the answer (which frees the call). A send
 * that finds the call already answered (a refusal) fails; finish then gives the server's status.
 * Not retried. */
int ct_stream_begin(ct_client *client, const char *method, const ct_metadata *metadata, size_t metadata_count, const uint8_t *first,
                    size_t first_size, ct_call **call, ct_status *status);
int ct_stream_send(ct_call *call, const uint8_t *message, size_t size, ct_status *status);
int ct_stream_finish(ct_call *call, uint8_t **response, size_t *response_size, ct_status *status);

/* HealthService/Check: `*serving` is 1 when the service (or `service`, when not NULL) serves. */
int ct_health(ct_client *client, const char *service, int *serving, ct_status *status);

/* Transcript: a call arrived on, or left from, a tracking number. */
typedef enum { CT_INBOUND = 1, CT_OUTBOUND = 2 } ct_direction;

typedef struct ct_call_start {
    const char *call_id;          /* the gateway's id: 1–128 of a-z A-Z 0-9 - _ . : */
    const char *tracking_number;  /* any common format */
    const char *caller_number;
    ct_direction direction;
    int64_t started_at_unix_ms;   /* 0: now */
    const char *callback_of;      /* an outbound call returning this earlier call, or NULL */
} ct_call_start;

/* Organisation ids are 1–64 characters (identity issues `org_` + 32 hex digits). */
#define CT_ORG_ID_MAX 64

typedef struct ct_call_started {
    char org_id[CT_ORG_ID_MAX + 1]; /* NUL-terminated; an answer naming a longer id is an error, never cut short */
    int record;                   /* 0: do not record (a suppressed caller) */
    char *notice;                 /* the notice to play before recording; malloc'd, free with ct_call_started_free */
} ct_call_started;

int ct_start_call(ct_client *transcript, const ct_call_start *call, ct_call_started *started, ct_status *status);
void ct_call_started_free(ct_call_started *started);

typedef enum { CT_ANSWERED = 1, CT_MISSED = 2, CT_VOICEMAIL = 3, CT_ABANDONED = 4 } ct_outcome;

typedef struct ct_call_end {
    const char *call_id;
    const char *org_id;
    int64_t answered_at_unix_ms;
    int64_t ended_at_unix_ms;
    uint64_t duration_ms;
    ct_outcome outcome;
    const char *recording_id;     /* or NULL */
} ct_call_end;

int ct_complete_call(ct_client *transcript, const ct_call_end *call, ct_status *status);

/* Media: the audio of a call, streamed from `fd` (read to its end). WAV files (PCM 16-bit,
 * mu-law, A-law) are checked against their own header by media; MP3 and Opus are stored as given. */
typedef enum { CT_WAV_PCM16 = 1, CT_WAV_MULAW = 2, CT_WAV_ALAW = 3, CT_MP3 = 4, CT_OPUS = 5 } ct_audio_format;

typedef struct ct_recording {
    const char *org_id;
    const char *call_id;          /* as in ct_call_start; with org_id, the header must fit in a 4 MiB frame
                                   * (else CT_INVALID_ARGUMENT, before anything is read or sent) */
    ct_audio_format format;
    uint32_t sample_rate_hz;
    uint32_t channels;
    uint64_t duration_ms;         /* 0 if unknown */
    const uint8_t *sha256;        /* 32 bytes, or NULL: computed by reading `fd` first (it must be seekable) */
} ct_recording;

/* Streams the file in 1 MiB messages within the server's flow-control window; on success
 * `recording_id` (64 bytes) holds media's id for it (`rec_` + 32 hex digits; an id that would
 * not fit is an error, never cut short). Not retried: an interrupted upload stores nothing, and
 * may be sent again. */
int ct_upload_recording(ct_client *media, int fd, const ct_recording *recording, char recording_id[64], ct_status *status);

/* Compliance: the greeting to play — the one announcing a returned call (`inbound` 0), or the
 * organisation's inbound recording greeting (`inbound` 1; empty unless the firm switched it
 * on). `*text` is malloc'd (free it). */
int ct_greeting(ct_client *compliance, const char *org_id, int inbound, char **text, ct_status *status);

#ifdef __cplusplus
}
#endif

#endif
