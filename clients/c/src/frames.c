#include "frames.h"

uint32_t ct_frames_length(const uint8_t header[4]) {
    return (uint32_t)header[0] << 24 | (uint32_t)header[1] << 16 | (uint32_t)header[2] << 8 | header[3];
}

int ct_frames_next(const uint8_t *data, size_t size, uint32_t max_frame, size_t *used, Calltrace__Rpc__V1__Frame **frame, const char **reason) {
    *frame = NULL;
    *used = 0;
    if (size < 4) return 0;
    uint32_t length = ct_frames_length(data);
    if (length > max_frame) {
        *reason = "frame larger than max_frame_bytes";
        return -1;
    }
    if (size - 4 < length) return 0;
    *frame = calltrace__rpc__v1__frame__unpack(NULL, length, data + 4);
    if (!*frame) {
        *reason = "bytes that do not decode as a Frame";
        return -1;
    }
    *used = 4 + (size_t)length;
    return 1;
}
