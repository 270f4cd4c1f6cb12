#include "CCurl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

/* The libcurl functions we call, found by name once. */
static struct {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *handle);
    CURLcode (*easy_perform)(CURL *handle);
    const char *(*easy_strerror)(CURLcode code);
    CURLcode (*easy_setopt)(CURL *handle, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *handle, CURLINFO info, ...);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *string);
    void (*slist_free_all)(struct curl_slist *list);
} curl;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];

static void load(void) {
    /* The soname Debian's libcurl4-openssl-dev links against; never unloaded. */
    void *library = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(failure, sizeof failure, "libcurl is not installed (libcurl4): %s", dlerror());
        return;
    }
    struct { void **slot; const char *name; } symbols[] = {
        {(void **)&curl.global_init, "curl_global_init"},   {(void **)&curl.easy_init, "curl_easy_init"},
        {(void **)&curl.easy_cleanup, "curl_easy_cleanup"}, {(void **)&curl.easy_perform, "curl_easy_perform"},
        {(void **)&curl.easy_strerror, "curl_easy_strerror"}, {(void **)&curl.easy_setopt, "curl_easy_setopt"},
        {(void **)&curl.easy_getinfo, "curl_easy_getinfo"}, {(void **)&curl.slist_append, "curl_slist_append"},
        {(void **)&curl.slist_free_all, "curl_slist_free_all"},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        if (!(*symbols[i].slot = dlsym(library, symbols[i].name))) {
            snprintf(failure, sizeof failure, "libcurl lacks %s", symbols[i].name);
            return;
        }
    }
    /* Not thread-safe to race, hence here, under pthread_once. */
    CURLcode code = curl.global_init(CURL_GLOBAL_DEFAULT);
    if (code != CURLE_OK) snprintf(failure, sizeof failure, "curl_global_init failed: %s", curl.easy_strerror(code));
}

int ct_curl_load(char *error, size_t error_size) {
    pthread_once(&once, load);
    if (!failure[0]) return 0;
    if (error && error_size) snprintf(error, error_size, "%s", failure);
    return -1;
}

CURL *ct_curl_easy_init(void) { return curl.easy_init(); }
void ct_curl_easy_cleanup(CURL *handle) { curl.easy_cleanup(handle); }
CURLcode ct_curl_easy_perform(CURL *handle) { return curl.easy_perform(handle); }
const char *ct_curl_easy_strerror(CURLcode code) { return curl.easy_strerror(code); }
struct curl_slist *ct_curl_slist_append(struct curl_slist *list, const char *string) { return curl.slist_append(list, string); }
void ct_curl_slist_free_all(struct curl_slist *list) { curl.slist_free_all(list); }

CURLcode ct_curl_set_string(CURL *handle, CURLoption option, const char *value) { return curl.easy_setopt(handle, option, value); }
CURLcode ct_curl_set_long(CURL *handle, CURLoption option, long value) { return curl.easy_setopt(handle, option, value); }
CURLcode ct_curl_set_pointer(CURL *handle, CURLoption option, void *value) { return curl.easy_setopt(handle, option, value); }
CURLcode ct_curl_set_list(CURL *handle, CURLoption option, struct curl_slist *value) { return curl.easy_setopt(handle, option, value); }
CURLcode ct_curl_set_callback(CURL *handle, CURLoption option, ct_curl_io_callback value) { return curl.easy_setopt(handle, option, value); }
CURLcode ct_curl_get_long(CURL *handle, CURLINFO info, long *value) { return curl.easy_getinfo(handle, info, value); }
