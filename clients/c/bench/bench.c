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
 *
 * The same modes prefixed `raw-` measure the least a C client can do for the same calls against
 * the same server, with no library: blocking OpenSSL, frames packed by protoc-c, one call at a
 * time per connection, and one connection per caller. libcalltrace is compared with it.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "calltrace.h"
#include "calltrace/rpc/v1/frame.pb-c.h"
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

/* Calls/s of `callers` threads running `body` (which counts into its argument) until `seconds` pass. */
static double run_callers(int callers, double seconds, void *(*body)(void *)) {
    pthread_t threads[256];
    long counts[256] = {0};
    double start = now_us();
    until = start + seconds * 1e6;
    for (int i = 0; i < callers; i++) pthread_create(&threads[i], NULL, body, &counts[i]);
    long total = 0;
    for (int i = 0; i < callers; i++) {
        pthread_join(threads[i], NULL);
        total += counts[i];
    }
    return total / ((now_us() - start) / 1e6);
}

/* One streamed message: UploadRequest{chunk: 64 KiB}, packed into a new buffer. */
static size_t upload_message(uint8_t **packed) {
    uint8_t *chunk = calloc(1, 64 << 10);
    *packed = malloc((64 << 10) + 16);
    Calltrace__Testing__V1__UploadRequest part;
    calltrace__testing__v1__upload_request__init(&part);
    part.chunk.data = chunk;
    part.chunk.len = 64 << 10;
    size_t size = calltrace__testing__v1__upload_request__pack(&part, *packed);
    free(chunk);
    return size;
}

/* ---------------------------------------------------------------- raw: no library */

static SSL_CTX *raw_ctx;
static const char *raw_host;
static int raw_port;

typedef struct {
    SSL *ssl;
    uint8_t *in;
    size_t in_size, in_capacity;
    uint64_t next_id;
    int64_t peer_window;
} raw_connection;

static void raw_die(const char *what) {
    fprintf(stderr, "raw: %s\n", what);
    exit(1);
}

static void raw_send(raw_connection *c, const Calltrace__Rpc__V1__Frame *frame) {
    size_t size = calltrace__rpc__v1__frame__get_packed_size(frame);
    uint8_t *bytes = malloc(size + 4);
    bytes[0] = (uint8_t)(size >> 24), bytes[1] = (uint8_t)(size >> 16), bytes[2] = (uint8_t)(size >> 8), bytes[3] = (uint8_t)size;
    calltrace__rpc__v1__frame__pack(frame, bytes + 4);
    if (SSL_write(c->ssl, bytes, (int)(size + 4)) != (int)(size + 4)) raw_die("write");
    free(bytes);
}

static Calltrace__Rpc__V1__Frame *raw_read(raw_connection *c) {
    for (;;) {
        if (c->in_size >= 4) {
            size_t length = (size_t)c->in[0] << 24 | (size_t)c->in[1] << 16 | (size_t)c->in[2] << 8 | c->in[3];
            if (c->in_size >= length + 4) {
                Calltrace__Rpc__V1__Frame *frame = calltrace__rpc__v1__frame__unpack(NULL, length, c->in + 4);
                memmove(c->in, c->in + length + 4, c->in_size - length - 4);
                c->in_size -= length + 4;
                if (!frame) raw_die("frame");
                return frame;
            }
        }
        if (c->in_capacity - c->in_size < 16384) c->in = realloc(c->in, c->in_capacity = c->in_capacity * 2 + 65536);
        int n = SSL_read(c->ssl, c->in + c->in_size, (int)(c->in_capacity - c->in_size));
        if (n <= 0) raw_die("read");
        c->in_size += (size_t)n;
    }
}

static raw_connection *raw_dial(void) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *list = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", raw_port);
    if (getaddrinfo(raw_host, port, &hints, &list) != 0) raw_die("address");
    int fd = socket(list->ai_family, SOCK_STREAM, 0);
    if (connect(fd, list->ai_addr, list->ai_addrlen) != 0) raw_die("connect");
    freeaddrinfo(list);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    raw_connection *c = calloc(1, sizeof *c);
    c->ssl = SSL_new(raw_ctx);
    SSL_set_fd(c->ssl, fd);
    if (SSL_connect(c->ssl) != 1) raw_die("handshake");
    Calltrace__Rpc__V1__Settings settings;
    calltrace__rpc__v1__settings__init(&settings);
    settings.max_frame_bytes = 4u << 20;
    settings.initial_window_bytes = 1u << 20;
    Calltrace__Rpc__V1__Frame hello;
    calltrace__rpc__v1__frame__init(&hello);
    hello.settings = &settings;
    raw_send(c, &hello);
    Calltrace__Rpc__V1__Frame *theirs = raw_read(c);
    if (!theirs->settings) raw_die("settings");
    c->peer_window = theirs->settings->initial_window_bytes;
    calltrace__rpc__v1__frame__free_unpacked(theirs, NULL);
    c->next_id = 1;
    return c;
}

static void raw_close(raw_connection *c) {
    int fd = SSL_get_fd(c->ssl);
    SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    close(fd);
    free(c->in);
    free(c);
}

/* One Echo call: open frame with the request and end_stream, then frames until its status. */
static void raw_echo(raw_connection *c) {
    Calltrace__Rpc__V1__CallHeader header;
    calltrace__rpc__v1__call_header__init(&header);
    header.method = "/calltrace.testing.v1.EchoService/Echo";
    header.timeout_ms = 60000;
    Calltrace__Rpc__V1__Frame frame;
    calltrace__rpc__v1__frame__init(&frame);
    frame.call_id = c->next_id++;
    frame.header = &header;
    frame.payload_case = CALLTRACE__RPC__V1__FRAME__PAYLOAD_MESSAGE;
    frame.message.data = request;
    frame.message.len = request_size;
    frame.end_stream = 1;
    raw_send(c, &frame);
    for (;;) {
        Calltrace__Rpc__V1__Frame *answer = raw_read(c);
        int done = answer->call_id == frame.call_id && answer->status;
        if (done && answer->status->code != 0) raw_die("echo refused");
        calltrace__rpc__v1__frame__free_unpacked(answer, NULL);
        if (done) return;
    }
}

static void *raw_caller(void *count) {
    raw_connection *c = raw_dial();
    long calls = 0;
    while (now_us() < until) {
        raw_echo(c);
        calls++;
    }
    raw_close(c);
    *(long *)count = calls;
    return NULL;
}

static int raw_main(const char *mode, int argc, char **argv) {
    raw_ctx = SSL_CTX_new(TLS_client_method());
    static const unsigned char alpn[] = {7, 'c', 't', 'r', 'p', 'c', '/', '1'};
    SSL_CTX_set_min_proto_version(raw_ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(raw_ctx, argv[3]) != 1 || SSL_CTX_use_PrivateKey_file(raw_ctx, argv[4], SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_file(raw_ctx, argv[5]) != 1 || SSL_CTX_set_alpn_protos(raw_ctx, alpn, sizeof alpn) != 0) raw_die("TLS context");
    SSL_CTX_set_verify(raw_ctx, SSL_VERIFY_PEER, NULL);
    raw_host = argv[1];
    raw_port = atoi(argv[2]);
    if (strcmp(mode, "latency") == 0) {
        int count = atoi(argv[8]);
        raw_connection *c = raw_dial();
        for (int i = 0; i < count / 10; i++) raw_echo(c);
        double *samples = malloc(sizeof *samples * (size_t)count);
        for (int i = 0; i < count; i++) {
            double start = now_us();
            raw_echo(c);
            samples[i] = now_us() - start;
        }
        qsort(samples, (size_t)count, sizeof *samples, compare);
        printf("latency %.1f %.1f\n", samples[count / 2], samples[(int)(count * 0.99)]);
        free(samples);
        raw_close(c);
    } else if (strcmp(mode, "throughput") == 0 && argc > 9) {
        int callers = atoi(argv[8]);
        if (callers < 1 || callers > 256) return 2;
        printf("throughput %.1f\n", run_callers(callers, atof(argv[9]), raw_caller));
    } else if (strcmp(mode, "stream") == 0) {
        long mib = atol(argv[8]);
        raw_connection *c = raw_dial();
        raw_echo(c);
        uint8_t *packed = NULL;
        size_t size = upload_message(&packed);
        double start = now_us();
        Calltrace__Rpc__V1__CallHeader header;
        calltrace__rpc__v1__call_header__init(&header);
        header.method = "/calltrace.testing.v1.EchoService/Upload";
        header.timeout_ms = 600000;
        Calltrace__Rpc__V1__Frame frame;
        calltrace__rpc__v1__frame__init(&frame);
        frame.call_id = c->next_id++;
        frame.header = &header;
        raw_send(c, &frame);
        frame.header = NULL;
        frame.payload_case = CALLTRACE__RPC__V1__FRAME__PAYLOAD_MESSAGE;
        frame.message.data = packed;
        frame.message.len = size;
        int64_t window = c->peer_window;
        for (long i = 0; i < mib * 16; i++) {
            while (window <= 0) {  /* flow control: wait for the server to grant more */
                Calltrace__Rpc__V1__Frame *grant = raw_read(c);
                if (grant->status) raw_die("upload refused");
                window += grant->window_update_bytes;
                calltrace__rpc__v1__frame__free_unpacked(grant, NULL);
            }
            raw_send(c, &frame);
            window -= (int64_t)size;
        }
        frame.payload_case = CALLTRACE__RPC__V1__FRAME__PAYLOAD__NOT_SET;
        frame.end_stream = 1;
        raw_send(c, &frame);
        for (;;) {
            Calltrace__Rpc__V1__Frame *answer = raw_read(c);
            int done = answer->status != NULL;
            if (done && answer->status->code != 0) raw_die("upload failed");
            calltrace__rpc__v1__frame__free_unpacked(answer, NULL);
            if (done) break;
        }
        printf("stream %.1f\n", (double)(mib << 20) / 1e6 / ((now_us() - start) / 1e6));
        free(packed);
        raw_close(c);
    } else {
        return 2;
    }
    SSL_CTX_free(raw_ctx);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 9) {
        fprintf(stderr, "usage: %s HOST PORT CERT KEY CA SERVER_IDENTITY latency COUNT | throughput CALLERS SECS | stream MIB\n", argv[0]);
        return 2;
    }
    uint8_t payload[100];
    memset(payload, 7, sizeof payload);
    Calltrace__Testing__V1__EchoRequest message;
    calltrace__testing__v1__echo_request__init(&message);
    message.payload.data = payload;
    message.payload.len = sizeof payload;
    request_size = calltrace__testing__v1__echo_request__pack(&message, request);
    if (strncmp(argv[7], "raw-", 4) == 0) return raw_main(argv[7] + 4, argc, argv);
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
        if (echo() != CT_OK) return 1;  /* connected before the clock starts */
        if (callers < 1 || callers > 256) return 2;
        printf("throughput %.1f\n", run_callers(callers, atof(argv[9]), caller));
    } else if (strcmp(mode, "stream") == 0) {
        long mib = atol(argv[8]);
        uint8_t *packed = NULL;
        size_t size = upload_message(&packed);
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
        free(packed);
    } else {
        return 2;
    }
    ct_client_free(client);
    return 0;
}
