/* Debian's libpq (libpq5; libpq-dev for the header), loaded when a service first connects to
 * PostgreSQL, not when it starts: like libcurl (see CCurl.h), libpq brings some two dozen more
 * shared libraries (Kerberos, LDAP, ...) that a service on SQLite, the CLI and the tests never use.
 *
 * The types are libpq's own, opaque here: Swift sees only these functions. Every function below
 * requires a successful `ct_pq_load`. */
#ifndef CLIBPQ_H
#define CLIBPQ_H

#include <stddef.h>

typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;

/* What a statement's result is. */
enum {
    CT_PQ_COMMAND_OK = 0,  /* a statement that returns no rows succeeded */
    CT_PQ_ROWS = 1,        /* a query succeeded; its rows follow */
    CT_PQ_FAILED = 2,      /* the server refused it, or the connection failed */
};

/* Loads libpq, once per process (thread-safe). Returns 0, or -1 with the reason in `error`. */
int ct_pq_load(char *error, size_t error_size);

/* The value `keyword` takes in `conninfo` (a postgres:// URL or key=value string), as libpq
 * reads it, into `value`. Returns 1 when set, 0 when not, -1 when libpq cannot read `conninfo`
 * (its message is not given: the string may hold a password), -2 when the value is longer than
 * `value_size - 1` bytes. */
int ct_pq_conninfo_value(const char *conninfo, const char *keyword, char *value, size_t value_size);

/* PQconnectdbParams with expand_dbname = 1: the first value may be a URL. Never NULL but when
 * out of memory; check `ct_pq_connected`. */
PGconn *ct_pq_connect(const char *const *keywords, const char *const *values);
int ct_pq_connected(const PGconn *connection);
int ct_pq_ssl_in_use(PGconn *connection);
/* Whether the connection is over a Unix socket (from the socket itself, not the settings). */
int ct_pq_over_unix_socket(const PGconn *connection);
/* Drops the server's notices and warnings, which libpq would print to standard error with their
 * detail (it can quote a row's values). */
void ct_pq_quiet(PGconn *connection);
/* PQtransactionStatus: 0 idle, 1 a command running, 2 in a transaction, 3 in a failed one, 4 unknown. */
int ct_pq_transaction_status(const PGconn *connection);
const char *ct_pq_connection_error(const PGconn *connection);
void ct_pq_finish(PGconn *connection);

/* PQexecParams. Returns NULL when out of memory, the connection is gone or a command is still running. */
PGresult *ct_pq_exec(PGconn *connection, const char *command, int count, const unsigned int *types,
                     const char *const *values, const int *lengths, const int *formats, int result_format);
/* PQexec: statements separated by semicolons, without parameters, run as one implicit
 * transaction unless they say otherwise (a migration's DDL). The result is the last statement's,
 * or the first failure's. */
PGresult *ct_pq_exec_script(PGconn *connection, const char *script);
/* One of CT_PQ_COMMAND_OK, CT_PQ_ROWS, CT_PQ_FAILED (a NULL result has failed). */
int ct_pq_status(const PGresult *result);
/* PQresultErrorField: `field` is one of libpq's PG_DIAG_ codes ('C' SQLSTATE, 'n' constraint...). */
const char *ct_pq_error_field(const PGresult *result, int field);
int ct_pq_rows(const PGresult *result);
int ct_pq_columns(const PGresult *result);
const char *ct_pq_column_name(const PGresult *result, int column);
unsigned int ct_pq_column_type(const PGresult *result, int column);
int ct_pq_is_null(const PGresult *result, int row, int column);
const char *ct_pq_value(const PGresult *result, int row, int column);
int ct_pq_length(const PGresult *result, int row, int column);
const char *ct_pq_changed_rows(PGresult *result);
/* The command's tag: "COMMIT", or "ROLLBACK" for a commit of a failed transaction. */
const char *ct_pq_command_tag(PGresult *result);
void ct_pq_clear(PGresult *result);

#endif
