#include "CLibPQ.h"

#include <dlfcn.h>
#include <postgresql/libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

_Static_assert(PG_DIAG_SQLSTATE == 'C' && PG_DIAG_CONSTRAINT_NAME == 'n', "libpq's error field codes");
_Static_assert(PQTRANS_IDLE == 0 && PQTRANS_INTRANS == 2 && PQTRANS_INERROR == 3, "libpq's transaction states, as CLibPQ.h gives them");

/* The libpq functions we call, found by name once. */
static struct {
    PQconninfoOption *(*conninfo_parse)(const char *conninfo, char **errmsg);
    void (*conninfo_free)(PQconninfoOption *options);
    void (*freemem)(void *pointer);
    PGconn *(*connectdb_params)(const char *const *keywords, const char *const *values, int expand_dbname);
    ConnStatusType (*status)(const PGconn *connection);
    int (*ssl_in_use)(PGconn *connection);
    char *(*error_message)(const PGconn *connection);
    void (*finish)(PGconn *connection);
    PGresult *(*exec_params)(PGconn *connection, const char *command, int count, const Oid *types, const char *const *values,
                             const int *lengths, const int *formats, int result_format);
    PGresult *(*exec)(PGconn *connection, const char *command);
    ExecStatusType (*result_status)(const PGresult *result);
    char *(*result_error_field)(const PGresult *result, int field);
    int (*ntuples)(const PGresult *result);
    int (*nfields)(const PGresult *result);
    char *(*fname)(const PGresult *result, int column);
    Oid (*ftype)(const PGresult *result, int column);
    int (*getisnull)(const PGresult *result, int row, int column);
    char *(*getvalue)(const PGresult *result, int row, int column);
    int (*getlength)(const PGresult *result, int row, int column);
    char *(*cmd_tuples)(PGresult *result);
    char *(*cmd_status)(PGresult *result);
    void (*clear)(PGresult *result);
    int (*socket)(const PGconn *connection);
    PQnoticeProcessor (*set_notice_processor)(PGconn *connection, PQnoticeProcessor processor, void *argument);
    PGTransactionStatusType (*transaction_status)(const PGconn *connection);
} pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];

static void load(void) {
    /* The soname Debian's libpq-dev links against; never unloaded. */
    void *library = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        snprintf(failure, sizeof failure, "libpq is not installed (libpq5): %s", dlerror());
        return;
    }
    struct { void **slot; const char *name; } symbols[] = {
        {(void **)&pq.conninfo_parse, "PQconninfoParse"}, {(void **)&pq.conninfo_free, "PQconninfoFree"},
        {(void **)&pq.freemem, "PQfreemem"}, {(void **)&pq.connectdb_params, "PQconnectdbParams"},
        {(void **)&pq.status, "PQstatus"}, {(void **)&pq.ssl_in_use, "PQsslInUse"},
        {(void **)&pq.error_message, "PQerrorMessage"}, {(void **)&pq.finish, "PQfinish"},
        {(void **)&pq.exec_params, "PQexecParams"}, {(void **)&pq.exec, "PQexec"}, {(void **)&pq.result_status, "PQresultStatus"},
        {(void **)&pq.result_error_field, "PQresultErrorField"}, {(void **)&pq.ntuples, "PQntuples"},
        {(void **)&pq.nfields, "PQnfields"}, {(void **)&pq.fname, "PQfname"}, {(void **)&pq.ftype, "PQftype"},
        {(void **)&pq.getisnull, "PQgetisnull"}, {(void **)&pq.getvalue, "PQgetvalue"},
        {(void **)&pq.getlength, "PQgetlength"}, {(void **)&pq.cmd_tuples, "PQcmdTuples"}, {(void **)&pq.clear, "PQclear"},
        {(void **)&pq.cmd_status, "PQcmdStatus"}, {(void **)&pq.socket, "PQsocket"},
        {(void **)&pq.set_notice_processor, "PQsetNoticeProcessor"}, {(void **)&pq.transaction_status, "PQtransactionStatus"},
    };
    for (size_t i = 0; i < sizeof symbols / sizeof symbols[0]; i++) {
        if (!(*symbols[i].slot = dlsym(library, symbols[i].name))) {
            snprintf(failure, sizeof failure, "libpq lacks %s", symbols[i].name);
            return;
        }
    }
}

int ct_pq_load(char *error, size_t error_size) {
    pthread_once(&once, load);
    if (!failure[0]) return 0;
    if (error && error_size) snprintf(error, error_size, "%s", failure);
    return -1;
}

int ct_pq_conninfo_value(const char *conninfo, const char *keyword, char *value, size_t value_size) {
    char *message = NULL;
    PQconninfoOption *options = pq.conninfo_parse(conninfo, &message);
    if (message) pq.freemem(message);
    if (!options) return -1;
    int found = 0;
    for (PQconninfoOption *option = options; option->keyword; option++) {
        if (strcmp(option->keyword, keyword) == 0 && option->val) {
            found = (size_t)snprintf(value, value_size, "%s", option->val) < value_size ? 1 : -2;
        }
    }
    pq.conninfo_free(options);
    return found;
}

PGconn *ct_pq_connect(const char *const *keywords, const char *const *values) { return pq.connectdb_params(keywords, values, 1); }
int ct_pq_connected(const PGconn *connection) { return connection && pq.status(connection) == CONNECTION_OK; }
int ct_pq_ssl_in_use(PGconn *connection) { return pq.ssl_in_use(connection); }
const char *ct_pq_connection_error(const PGconn *connection) { return connection ? pq.error_message(connection) : "out of memory"; }
void ct_pq_finish(PGconn *connection) { pq.finish(connection); }

int ct_pq_over_unix_socket(const PGconn *connection) {
    struct sockaddr_storage address;
    socklen_t length = sizeof address;
    int fd = pq.socket(connection);
    return fd >= 0 && getsockname(fd, (struct sockaddr *)&address, &length) == 0 && address.ss_family == AF_UNIX;
}

static void ignore_notice(void *argument, const char *message) { (void)argument; (void)message; }
void ct_pq_quiet(PGconn *connection) { pq.set_notice_processor(connection, ignore_notice, NULL); }

int ct_pq_transaction_status(const PGconn *connection) { return (int)pq.transaction_status(connection); }

PGresult *ct_pq_exec(PGconn *connection, const char *command, int count, const unsigned int *types,
                     const char *const *values, const int *lengths, const int *formats, int result_format) {
    return pq.exec_params(connection, command, count, types, values, lengths, formats, result_format);
}

PGresult *ct_pq_exec_script(PGconn *connection, const char *script) { return pq.exec(connection, script); }

int ct_pq_status(const PGresult *result) {
    if (!result) return CT_PQ_FAILED;
    switch (pq.result_status(result)) {
    case PGRES_COMMAND_OK: return CT_PQ_COMMAND_OK;
    case PGRES_TUPLES_OK: return CT_PQ_ROWS;
    default: return CT_PQ_FAILED;
    }
}

const char *ct_pq_error_field(const PGresult *result, int field) { return result ? pq.result_error_field(result, field) : NULL; }
int ct_pq_rows(const PGresult *result) { return pq.ntuples(result); }
int ct_pq_columns(const PGresult *result) { return pq.nfields(result); }
const char *ct_pq_column_name(const PGresult *result, int column) { return pq.fname(result, column); }
unsigned int ct_pq_column_type(const PGresult *result, int column) { return pq.ftype(result, column); }
int ct_pq_is_null(const PGresult *result, int row, int column) { return pq.getisnull(result, row, column); }
const char *ct_pq_value(const PGresult *result, int row, int column) { return pq.getvalue(result, row, column); }
int ct_pq_length(const PGresult *result, int row, int column) { return pq.getlength(result, row, column); }
const char *ct_pq_changed_rows(PGresult *result) { return pq.cmd_tuples(result); }
const char *ct_pq_command_tag(PGresult *result) { return pq.cmd_status(result); }
void ct_pq_clear(PGresult *result) { if (result) pq.clear(result); }
