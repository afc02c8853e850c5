/* migrate.h - versioned schema migrations per owner (the host, a plugin). */
#ifndef WEFT_HOST_MIGRATE_H
#define WEFT_HOST_MIGRATE_H

#include <weft/weft.h>

#include "diag.h"

/* Open (or reuse) the control thread's blocking connection. */
int wmig_init(const char *conninfo);
/* This process's name in schema-change notifications (to skip its own). */
void wmig_set_node(const char *node);
void wmig_fini(void);

/*
 * Apply the missing migrations of `owner` in one transaction under an
 * advisory lock. Refuses gaps, a changed already-applied migration and a
 * database ahead of `migs`. Blocking: control thread only. Returns the
 * number applied, or -1 with the reason in `d` (nothing is applied then).
 */
int wmig_apply(const char *owner, const weft_migration *migs, struct wdiag *d);

/* SHA-256 of `sql` as 64 hex characters plus NUL. */
void wmig_checksum(const char *sql, char out[65]);

#endif
