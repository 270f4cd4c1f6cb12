/* Debian's libcurl (libcurl4-openssl-dev: built on the system OpenSSL), loaded when the process
 * first sends mail or makes an HTTPS request, not when it starts.
 *
 * libcurl brings some 25 more shared libraries (GnuTLS, Kerberos, LDAP, SSH, ...): linked, they
 * cost every process about 8 ms at start, and the CLI and media never use them. The functions
 * below call into libcurl once `ct_curl_load` has found it; curl_easy_setopt and
 * curl_easy_getinfo, which are variadic and so not callable from Swift, get typed wrappers. */
#ifndef CCURL_H
#define CCURL_H

#include <curl/curl.h>
#include <stddef.h>

typedef size_t (*ct_curl_io_callback)(char *buffer, size_t size, size_t count, void *context);

/* Loads libcurl and runs curl_global_init, once per process (thread-safe). Returns 0, or -1
 * with the reason in `error`. Every function below requires a successful load. */
int ct_curl_load(char *error, size_t error_size);

CURL *ct_curl_easy_init(void);
void ct_curl_easy_cleanup(CURL *handle);
CURLcode ct_curl_easy_perform(CURL *handle);
const char *ct_curl_easy_strerror(CURLcode code);
struct curl_slist *ct_curl_slist_append(struct curl_slist *list, const char *string);
void ct_curl_slist_free_all(struct curl_slist *list);

CURLcode ct_curl_set_string(CURL *handle, CURLoption option, const char *value);
CURLcode ct_curl_set_long(CURL *handle, CURLoption option, long value);
CURLcode ct_curl_set_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ct_curl_set_list(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode ct_curl_set_callback(CURL *handle, CURLoption option, ct_curl_io_callback value);
CURLcode ct_curl_get_long(CURL *handle, CURLINFO info, long *value);

#endif
