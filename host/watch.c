/* watch.c - inotify on the plugins' directories; a change is acted on after
 * a short quiet period, since builds write files in several steps. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <event2/event.h>

#include "host.h"
#include "log.h"
#include "plugin.h"
#include "settings.h"
#include "watch.h"

#define WWATCH_QUIET_MS 300

static int wwatch_fd = -1;
static struct event *wwatch_ev, *wwatch_timer;

static void wwatch_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (!atomic_load(&whost_g->stopping))
        wplug_reload_changed(whost_g->set);
}

static void wwatch_read(evutil_socket_t fd, short what, void *arg)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    struct timeval tv = {0, WWATCH_QUIET_MS * 1000};
    ssize_t n;

    (void)what;
    (void)arg;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        ; /* which file changed is decided by comparing signatures */
    evtimer_add(wwatch_timer, &tv);
}

int wwatch_update(const struct wsettings *set)
{
    if (!set->watch) {
        wwatch_stop();
        return 0;
    }
    if (wwatch_fd < 0) {
        wwatch_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (wwatch_fd < 0) {
            wlog(WLOG_ERROR, "host", "inotify: %s", strerror(errno));
            return -1;
        }
        wwatch_ev = event_new(whost_g->ctl.base, wwatch_fd, EV_READ | EV_PERSIST,
                              wwatch_read, NULL);
        wwatch_timer = evtimer_new(whost_g->ctl.base, wwatch_fire, NULL);
        if (wwatch_ev == NULL || wwatch_timer == NULL ||
            event_add(wwatch_ev, NULL) != 0) {
            wwatch_stop();
            return -1;
        }
    }
    for (int i = 0; i < set->nplugins; i++) {
        char dir[PATH_MAX], *slash;
        if (!set->plugins[i].enabled || set->plugins[i].path == NULL)
            continue;
        strncpy(dir, set->plugins[i].path, sizeof(dir) - 1);
        dir[sizeof(dir) - 1] = '\0';
        slash = strrchr(dir, '/');
        if (slash != NULL)
            *slash = '\0';
        if (inotify_add_watch(wwatch_fd, slash ? dir : ".",
                              IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0)
            wlog(WLOG_WARN, "host", "cannot watch %s: %s", dir,
                 strerror(errno));
    }
    return 0;
}

void wwatch_stop(void)
{
    if (wwatch_ev != NULL)
        event_free(wwatch_ev);
    if (wwatch_timer != NULL)
        event_free(wwatch_timer);
    if (wwatch_fd >= 0)
        close(wwatch_fd);
    wwatch_ev = wwatch_timer = NULL;
    wwatch_fd = -1;
}
