/* host.c - the process-wide host object. */
#include <stdlib.h>
#include <string.h>

#include "host.h"

struct whost *whost_g;

char *whost_admin_token(void)
{
    char *t = NULL;

    pthread_mutex_lock(&whost_g->admin_mu);
    if (whost_g->admin_token != NULL && whost_g->admin_token[0] != '\0')
        t = strdup(whost_g->admin_token);
    pthread_mutex_unlock(&whost_g->admin_mu);
    return t;
}
