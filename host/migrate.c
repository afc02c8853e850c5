/* migrate.c - schema migrations, applied on the control thread with a
 * blocking connection of its own (plugin loads happen there anyway), before
 * the new version goes live. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sodium.h>

#include "log.h"
#include "migrate.h"

/* pg_advisory_xact_lock key: "weftmigr" as an integer, any constant would
 * do as long as every weftd uses the same. */
#define WMIG_LOCK "7738719866047738482"

static PGconn *wmig_conn;
static char *wmig_conninfo;
static char wmig_node[64] = "?";

void wmig_set_node(const char *node)
{
    snprintf(wmig_node, sizeof(wmig_node), "%s", node);
}

int wmig_init(const char *conninfo)
{
    free(wmig_conninfo);
    wmig_conninfo = strdup(conninfo);
    return wmig_conninfo != NULL ? 0 : -1;
}

void wmig_fini(void)
{
    if (wmig_conn != NULL)
        PQfinish(wmig_conn);
    wmig_conn = NULL;
    free(wmig_conninfo);
    wmig_conninfo = NULL;
}

/* Server notices ("relation already exists, skipping") are not news. */
static void wmig_notice(void *arg, const char *msg)
{
    (void)arg;
    wlog(WLOG_DEBUG, "db", "%.*s", (int)strcspn(msg, "\n"), msg);
}

static PGconn *wmig_connection(struct wdiag *d)
{
    if (wmig_conn != NULL && PQstatus(wmig_conn) == CONNECTION_OK)
        return wmig_conn;
    if (wmig_conn != NULL)
        PQfinish(wmig_conn);
    wmig_conn = NULL;
    if (wmig_conninfo == NULL) {
        wdiag_add(d, NULL, 0, "no database is configured");
        return NULL;
    }
    wmig_conn = PQconnectdb(wmig_conninfo);
    if (PQstatus(wmig_conn) != CONNECTION_OK) {
        wdiag_add(d, NULL, 0, "cannot connect to the database: %s",
                  PQerrorMessage(wmig_conn));
        PQfinish(wmig_conn);
        wmig_conn = NULL;
        return NULL;
    }
    PQsetNoticeProcessor(wmig_conn, wmig_notice, NULL);
    return wmig_conn;
}

void wmig_checksum(const char *sql, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(h, (const unsigned char *)sql, strlen(sql));
    sodium_bin2hex(out, 65, h, sizeof(h));
}

/* Run a statement; on failure record `what` and the server's message. */
static int wmig_exec(PGconn *pg, const char *sql, int n, const char *const *p,
                     PGresult **out, struct wdiag *d, const char *what)
{
    PGresult *res = n > 0 ? PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0)
                          : PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char *msg = strdup(PQresultErrorMessage(res));
        if (msg != NULL) {
            msg[strcspn(msg, "\n")] = '\0';
            wdiag_add(d, NULL, 0, "%s: %s", what, msg);
            free(msg);
        }
        PQclear(res);
        return -1;
    }
    if (out != NULL)
        *out = res;
    else
        PQclear(res);
    return 0;
}

static int wmig_check_table(const char *owner, const weft_migration *migs,
                            struct wdiag *d)
{
    for (int i = 0; migs[i].version != 0; i++) {
        if (migs[i].version != i + 1) {
            wdiag_add(d, NULL, 0,
                      "%s: migration #%d has version %d; versions must be "
                      "1, 2, 3... without gaps",
                      owner, i + 1, migs[i].version);
            return -1;
        }
        if (migs[i].sql == NULL || migs[i].name == NULL) {
            wdiag_add(d, NULL, 0, "%s: migration %d has no name or SQL",
                      owner, migs[i].version);
            return -1;
        }
    }
    return 0;
}

int wmig_apply(const char *owner, const weft_migration *migs, struct wdiag *d)
{
    PGconn *pg;
    PGresult *res = NULL;
    int applied = 0, n = 0, rows;
    char what[256];

    if (migs == NULL || migs[0].version == 0)
        return 0;
    if (wmig_check_table(owner, migs, d) != 0)
        return -1;
    while (migs[n].version != 0)
        n++;
    pg = wmig_connection(d);
    if (pg == NULL)
        return -1;
    if (wmig_exec(pg, "BEGIN", 0, NULL, NULL, d, "BEGIN") != 0)
        return -1;
    /* Serialise migrators across weftd processes sharing the database. */
    if (wmig_exec(pg, "SELECT pg_advisory_xact_lock(" WMIG_LOCK ")", 0, NULL,
                  NULL, d, "taking the migration lock") != 0 ||
        wmig_exec(pg,
                  "CREATE TABLE IF NOT EXISTS weft_migrations ("
                  " owner text NOT NULL, version integer NOT NULL,"
                  " name text NOT NULL, checksum text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now(),"
                  " PRIMARY KEY (owner, version))",
                  0, NULL, NULL, d, "creating weft_migrations") != 0 ||
        wmig_exec(pg,
                  "SELECT version, checksum FROM weft_migrations"
                  " WHERE owner = $1 ORDER BY version",
                  1, &owner, &res, d, "reading weft_migrations") != 0)
        goto fail;
    rows = PQntuples(res);
    for (int r = 0; r < rows; r++) {
        int v = atoi(PQgetvalue(res, r, 0));
        char sum[65];
        if (v < 1 || v > n) {
            wdiag_add(d, NULL, 0,
                      "%s: the database has migration %d applied, but this "
                      "version ships only %d (an older build?)",
                      owner, v, n);
            goto fail;
        }
        wmig_checksum(migs[v - 1].sql, sum);
        if (strcmp(sum, PQgetvalue(res, r, 1)) != 0) {
            wdiag_add(d, NULL, 0,
                      "%s: migration %04d_%s changed after it was applied "
                      "(checksum %.12s..., applied %.12s...): add a new "
                      "migration instead of editing an applied one",
                      owner, v, migs[v - 1].name, sum, PQgetvalue(res, r, 1));
            goto fail;
        }
    }
    for (int i = rows; i < n; i++) {
        char sum[65], ver[16];
        const char *p[4] = {owner, ver, migs[i].name, sum};

        snprintf(what, sizeof(what), "%s: migration %04d_%s failed", owner,
                 migs[i].version, migs[i].name);
        if (wmig_exec(pg, migs[i].sql, 0, NULL, NULL, d, what) != 0)
            goto fail;
        wmig_checksum(migs[i].sql, sum);
        snprintf(ver, sizeof(ver), "%d", migs[i].version);
        if (wmig_exec(pg,
                      "INSERT INTO weft_migrations (owner, version, name,"
                      " checksum) VALUES ($1, $2, $3, $4)",
                      4, p, NULL, d, "recording a migration") != 0)
            goto fail;
        applied++;
    }
    PQclear(res);
    res = NULL;
    if (applied > 0) {
        /* Other weftd nodes on this database re-prepare their statements;
         * NOTIFY is delivered on COMMIT, so never for a rolled-back one. */
        char payload[256];
        const char *p[1] = {payload};
        snprintf(payload, sizeof(payload), "%s %s", owner, wmig_node);
        if (wmig_exec(pg, "SELECT pg_notify('weft_schema', $1)", 1, p, NULL,
                      d, "announcing the schema change") != 0)
            goto fail;
    }
    if (wmig_exec(pg, "COMMIT", 0, NULL, NULL, d, "COMMIT") != 0)
        return -1;
    if (applied > 0)
        wlog(WLOG_INFO, "db", "%s: applied %d migration(s), now at %d", owner,
             applied, n);
    return applied;
fail:
    if (res != NULL)
        PQclear(res);
    PQclear(PQexec(pg, "ROLLBACK"));
    return -1;
}
