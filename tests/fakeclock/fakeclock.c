/*
 * LD_PRELOAD shim that moves CLOCK_REALTIME (clock_gettime, gettimeofday,
 * time) of a process to where a test wants it, so that a real redis-server's
 * TIME, and every script's now_ms(), can be set to an exact millisecond.
 *
 * The file named by FAKECLOCK_FILE holds one line:
 *   "freeze T"  wall time reads exactly T ms since the epoch until changed;
 *   "offset D"  wall time runs on, D ms (may be negative) ahead of the real one.
 * No file, or anything else in it, means the real time.
 *
 * The file is read on every call, so a change applies to the server's very
 * next command. Tests replace it whole (write, then rename), so a reader sees
 * the old line or the new one. The monotonic clocks are left alone, so the
 * server's event loop keeps its pace; whatever the server measures in wall
 * time (key expiry, blocking-command timeouts on Redis) stands still while
 * wall time is frozen.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
/* Read once: getenv is not safe beside the server's own threads later on. */
static char control_path[4096];

__attribute__((constructor)) static void fakeclock_init(void) {
    real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("FAKECLOCK_FILE");
    if (path != NULL && strlen(path) < sizeof control_path) {
        strcpy(control_path, path);
    }
}

enum mode { REAL, FREEZE, OFFSET };

static long long parse_ll(const char *s, int *ok) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    *ok = errno == 0 && end != s && (*end == '\0' || *end == '\n');
    return v;
}

/* The mode and its value in ms. errno is kept: callers may look at it. */
static enum mode control(long long *ms) {
    if (control_path[0] == '\0') return REAL;
    int saved = errno;
    enum mode mode = REAL;
    int fd = open(control_path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[64];
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n > 0) {
            int ok = 0;
            buf[n] = '\0';
            if (strncmp(buf, "freeze ", 7) == 0) {
                *ms = parse_ll(buf + 7, &ok);
                if (ok && *ms >= 0) mode = FREEZE;
            } else if (strncmp(buf, "offset ", 7) == 0) {
                *ms = parse_ll(buf + 7, &ok);
                if (ok) mode = OFFSET;
            }
        }
    }
    errno = saved;
    return mode;
}

static int is_realtime(clockid_t id) {
    return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE;
}

int clock_gettime(clockid_t id, struct timespec *ts) {
    if (real_clock_gettime == NULL) fakeclock_init();
    int rc = real_clock_gettime(id, ts);
    if (rc != 0 || !is_realtime(id)) return rc;
    long long ms = 0;
    switch (control(&ms)) {
    case FREEZE:
        ts->tv_sec = (time_t)(ms / 1000);
        ts->tv_nsec = (long)(ms % 1000) * 1000000L;
        break;
    case OFFSET: {
        long long ns = (long long)ts->tv_nsec + (ms % 1000) * 1000000LL;
        long long sec = (long long)ts->tv_sec + ms / 1000;
        if (ns < 0) { ns += 1000000000LL; sec -= 1; }
        if (ns >= 1000000000LL) { ns -= 1000000000LL; sec += 1; }
        ts->tv_sec = (time_t)sec;
        ts->tv_nsec = (long)ns;
        break;
    }
    case REAL:
        break;
    }
    return rc;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz) {
    struct timespec ts;
    if (tz != NULL) memset(tz, 0, sizeof(struct timezone));
    int rc = clock_gettime(CLOCK_REALTIME, &ts);
    if (rc != 0) return rc;
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = (suseconds_t)(ts.tv_nsec / 1000);
    return 0;
}

time_t time(time_t *out) {
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return (time_t)-1;
    if (out != NULL) *out = ts.tv_sec;
    return ts.tv_sec;
}
