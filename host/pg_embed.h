/* pg_embed.h - the private PostgreSQL cluster weftd runs when [database] url
 * is empty: initdb on first use, a postmaster on a Unix socket only, a clean
 * fast shutdown. Call these from one thread (the control thread), the same
 * one for the whole life of the cluster: the postmaster is told to shut down
 * when the thread that started it goes away (PR_SET_PDEATHSIG). */
#ifndef WEFT_HOST_PG_EMBED_H
#define WEFT_HOST_PG_EMBED_H

#include <sys/types.h>

#include "diag.h"

struct wpg_embed;

/* The role initdb creates and weftd connects as. */
#define WPG_EMBED_USER "weft"

/* Start the private cluster under `dir` (created with initdb on first use,
 * reused afterwards), listening on a Unix socket only, and wait (up to
 * timeout_ms; <= 0 means 30 s) until it accepts connections and the database
 * `dbname` exists (create it if missing). On success *conninfo gets a
 * malloc'd libpq conninfo string (host=<socket dir> port=5432
 * dbname=<dbname> user=weft) and the handle is returned; on failure NULL
 * with the reason(s) in `d`. initdb itself, which runs once, gets its own
 * limit of two minutes. The binaries come from /usr/lib/postgresql/15/bin
 * unless WEFT_PG_BINDIR names another directory. As root, initdb and
 * postgres run as the `postgres` system user. */
struct wpg_embed *wpg_embed_start(const char *dir, const char *dbname,
                                  int timeout_ms, char **conninfo,
                                  struct wdiag *d);
/* Stop it cleanly (fast shutdown: SIGINT to the postmaster, wait up to 30 s,
 * then SIGQUIT) and free. NULL is allowed. */
void wpg_embed_stop(struct wpg_embed *pg);
/* The postmaster's pid (for tests and logs). */
pid_t wpg_embed_pid(const struct wpg_embed *pg);
/* Is the postmaster still alive (waitpid WNOHANG)? Lets weftd notice a
 * crash; once it says 0 the child is reaped, and wpg_embed_stop() only
 * frees. */
int wpg_embed_alive(struct wpg_embed *pg);

#endif
