/* builtin.h - the host's own endpoints. */
#ifndef WEFT_HOST_BUILTIN_H
#define WEFT_HOST_BUILTIN_H

/* Register /healthz, /readyz, /metrics, /api/plugins and the admin routes. */
int wbuiltin_register(void);

#endif
