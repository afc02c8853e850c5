/* watch.h - reload plugins whose file is rewritten ([plugins] watch). */
#ifndef WEFT_HOST_WATCH_H
#define WEFT_HOST_WATCH_H

struct wsettings;

/* Watch the directories of the enabled plugins' files (again after a
 * SIGHUP). Control thread. Returns 0 or -1. */
int wwatch_update(const struct wsettings *set);
void wwatch_stop(void);

#endif
