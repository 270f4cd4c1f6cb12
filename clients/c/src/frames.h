/* Splitting a ctrpc/1 byte stream into frames (internal to libcalltrace; fuzzed by fuzz/frame_fuzzer.c). */
#ifndef CALLTRACE_FRAMES_H
#define CALLTRACE_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "calltrace/rpc/v1/frame.pb-c.h"

/* The next frame of `data`: 1 with `*frame` (free with calltrace__rpc__v1__frame__free_unpacked)
 * and `*used` bytes consumed; 0 when more bytes are needed; -1 on a connection error (a length
 * over `max_frame`, checked before anything is allocated, or bytes that do not decode), with
 * `*reason`. */
int ct_frames_next(const uint8_t *data, size_t size, uint32_t max_frame, size_t *used, Calltrace__Rpc__V1__Frame **frame, const char **reason);

/* The 4-byte big-endian length at `header`. */
uint32_t ct_frames_length(const uint8_t header[4]);

#endif
