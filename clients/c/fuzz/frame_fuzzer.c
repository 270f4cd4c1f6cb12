/*
 * libFuzzer harness for libcalltrace's frame splitting and decoding (src/frames.c with the
 * protoc-c Frame decoder), built with clang's -fsanitize=fuzzer,address,undefined by
 * `make -C clients/c fuzz-smoke` (10 s, in `make test`) or `fuzz` (10 min). Seeds: Tests/Fuzz/corpus/frame.
 *
 * Whatever the bytes: decoding a body gives a frame (whose strings are terminated) or nothing;
 * the same bytes as a stream, cut in two anywhere, never make the splitter read out of bounds,
 * allocate past its limit or loop.
 */
#include <stdlib.h>
#include <string.h>

#include "frames.h"

static void split(const uint8_t *data, size_t size) {
    uint8_t *buffer = malloc(size ? size : 1);
    size_t held = 0;
    const size_t cut = size / 2;
    const size_t pieces[2][2] = {{0, cut}, {cut, size}};
    for (int piece = 0; piece < 2; piece++) {
        memcpy(buffer + held, data + pieces[piece][0], pieces[piece][1] - pieces[piece][0]);
        held += pieces[piece][1] - pieces[piece][0];
        for (;;) {
            Calltrace__Rpc__V1__Frame *frame = NULL;
            size_t used = 0;
            const char *reason = NULL;
            int result = ct_frames_next(buffer, held, 1u << 16, &used, &frame, &reason);
            if (result <= 0) {
                if (result < 0) held = 0;  /* a connection error: the connection would close */
                break;
            }
            calltrace__rpc__v1__frame__free_unpacked(frame, NULL);
            memmove(buffer, buffer + used, held - used);
            held -= used;
        }
    }
    free(buffer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* The input as one frame's body, as the client decodes it (it never re-encodes what it
     * receives: protoc-c keeps unknown fields as they came, so a round trip is not asked for). */
    Calltrace__Rpc__V1__Frame *frame = calltrace__rpc__v1__frame__unpack(NULL, size, data);
    if (frame) {
        if (frame->status && frame->status->message) (void)strlen(frame->status->message);
        if (frame->header && frame->header->method) (void)strlen(frame->header->method);
        calltrace__rpc__v1__frame__free_unpacked(frame, NULL);
    }
    split(data, size);
    return 0;
}
