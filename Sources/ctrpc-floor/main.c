/*
 * ctrpc-floor — the C floor for `calltrace-bench rpc`.
 *
 * Plain OpenSSL mutual TLS 1.3 between threads of one process, with ctrpc's 4-byte
 * big-endian length prefix and nothing else: no protobuf, no multiplexing, no flow control.
 * It is what the hardware and OpenSSL allow; CallTrace's RPC layer is compared with it.
 *
 *   ctrpc-floor CERT KEY CA latency COUNT            -> "latency p50_us p99_us server_cpu_us_per_call"
 *   ctrpc-floor CERT KEY CA throughput CALLERS SECS  -> "throughput calls_per_second"
 *   ctrpc-floor CERT KEY CA stream MIB               -> "stream mb_per_second"
 *
 * The server echoes frames of at most 1 KiB and swallows larger ones. Each caller thread
 * has its own connection and server thread. The latency run also reports the CPU time its
 * server thread spent per measured round trip (CLOCK_THREAD_CPUTIME_ID of that thread), the
 * figure calltrace-bench sets beside the Swift server's.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static SSL_CTX *server_ctx, *client_ctx;
static int listen_fd, listen_port;
/* The thread serving the latency run's one connection (set before its first echo). */
static pthread_t latency_server;
static volatile int latency_server_known;

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void die(const char *what) {
    fprintf(stderr, "ctrpc-floor: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static SSL_CTX *make_ctx(int server, const char *cert, const char *key, const char *ca) {
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) die("certificate");
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) die("key");
    if (SSL_CTX_load_verify_file(ctx, ca) != 1) die("ca");
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_num_tickets(ctx, 0);
    return ctx;
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

static void *serve(void *arg) {
    int fd = (int)(intptr_t)arg;
    latency_server = pthread_self();
    __atomic_store_n(&latency_server_known, 1, __ATOMIC_RELEASE);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = SSL_new(server_ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        uint8_t *buffer = malloc(1 << 20);
        for (;;) {
            if (!read_exact(ssl, buffer, 4)) break;
            uint32_t length = (uint32_t)buffer[0] << 24 | (uint32_t)buffer[1] << 16 | (uint32_t)buffer[2] << 8 | buffer[3];
            if (length > (1 << 20) - 4 || !read_exact(ssl, buffer + 4, length)) break;
            if (length <= 1024 && SSL_write(ssl, buffer, (int)length + 4) <= 0) break;
        }
        free(buffer);
    }
    SSL_free(ssl);
    close(fd);
    return NULL;
}

static void *accept_loop(void *arg) {
    (void)arg;
    for (;;) {
        int fd = accept(listen_fd, NULL, NULL);
        if (fd < 0) continue;
        pthread_t thread;
        pthread_create(&thread, NULL, serve, (void *)(intptr_t)fd);
        pthread_detach(thread);
    }
    return NULL;
}

static SSL *dial(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_port = htons((uint16_t)listen_port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SSL *ssl = SSL_new(client_ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_connect(ssl) != 1) die("handshake");
    return ssl;
}

/* One 100-byte request and its echo. */
static void round_trip(SSL *ssl, uint8_t *frame) {
    uint8_t reply[104];
    if (SSL_write(ssl, frame, 104) != 104 || !read_exact(ssl, reply, 104)) die("round trip");
}

/* CPU time of the latency run's server thread, in microseconds. */
static double server_cpu_us(void) {
    clockid_t clock;
    struct timespec ts;
    if (!__atomic_load_n(&latency_server_known, __ATOMIC_ACQUIRE) || pthread_getcpuclockid(latency_server, &clock) != 0
        || clock_gettime(clock, &ts) != 0) die("server thread CPU clock");
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

struct caller { double seconds; long calls; };

static void *call_loop(void *arg) {
    struct caller *caller = arg;
    SSL *ssl = dial();
    uint8_t frame[104] = {0, 0, 0, 100};
    double end = now_us() + caller->seconds * 1e6;
    while (now_us() < end) {
        round_trip(ssl, frame);
        caller->calls++;
    }
    SSL_shutdown(ssl);
    close(SSL_get_fd(ssl));
    SSL_free(ssl);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: ctrpc-floor CERT KEY CA latency COUNT | throughput CALLERS SECS | stream MIB\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    server_ctx = make_ctx(1, argv[1], argv[2], argv[3]);
    client_ctx = make_ctx(0, argv[1], argv[2], argv[3]);
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {0};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(listen_fd, 64) != 0) die("listen");
    socklen_t length = sizeof address;
    getsockname(listen_fd, (struct sockaddr *)&address, &length);
    listen_port = ntohs(address.sin_port);
    pthread_t acceptor;
    pthread_create(&acceptor, NULL, accept_loop, NULL);

    const char *mode = argv[4];
    if (strcmp(mode, "latency") == 0) {
        int count = atoi(argv[5]);
        SSL *ssl = dial();
        uint8_t frame[104] = {0, 0, 0, 100};
        for (int i = 0; i < count / 10 || i == 0; i++) round_trip(ssl, frame); /* warm up: after one echo the server thread is known */
        double *samples = malloc(sizeof(double) * (size_t)count);
        double cpu = server_cpu_us();
        for (int i = 0; i < count; i++) {
            double start = now_us();
            round_trip(ssl, frame);
            samples[i] = now_us() - start;
        }
        cpu = server_cpu_us() - cpu;
        qsort(samples, (size_t)count, sizeof(double), compare);
        printf("latency %.1f %.1f %.2f\n", samples[count / 2], samples[(int)(count * 0.99)], cpu / count);
    } else if (strcmp(mode, "throughput") == 0 && argc >= 7) {
        int callers = atoi(argv[5]);
        double seconds = atof(argv[6]);
        pthread_t threads[256];
        struct caller state[256] = {{0}};
        if (callers < 1 || callers > 256) die("callers must be 1...256");
        double start = now_us();
        for (int i = 0; i < callers; i++) {
            state[i].seconds = seconds;
            pthread_create(&threads[i], NULL, call_loop, &state[i]);
        }
        long total = 0;
        for (int i = 0; i < callers; i++) {
            pthread_join(threads[i], NULL);
            total += state[i].calls;
        }
        printf("throughput %.0f\n", total / ((now_us() - start) / 1e6));
    } else if (strcmp(mode, "stream") == 0) {
        long mib = atol(argv[5]);
        SSL *ssl = dial();
        size_t chunk = 64 * 1024;
        uint8_t *frame = calloc(1, chunk + 4);
        frame[0] = (uint8_t)(chunk >> 24); frame[1] = (uint8_t)(chunk >> 16);
        frame[2] = (uint8_t)(chunk >> 8); frame[3] = (uint8_t)chunk;
        uint8_t end[104] = {0, 0, 0, 100};
        double start = now_us();
        for (long i = 0; i < mib * 16; i++) {
            if (SSL_write(ssl, frame, (int)chunk + 4) <= 0) die("stream write");
        }
        round_trip(ssl, end); /* the server has read everything */
        double elapsed = (now_us() - start) / 1e6;
        printf("stream %.1f\n", (double)mib * 1048576.0 / 1e6 / elapsed);
    } else {
        die("unknown mode");
    }
    return 0;
}
