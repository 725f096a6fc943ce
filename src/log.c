/* log.c -- leveled, timestamped log lines written atomically to stderr. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096

static _Atomic int log_level_cur = LOG_INFO;
static _Atomic int log_fd = 2;

void log_set_level(enum log_level level)
{
    atomic_store(&log_level_cur, (int)level);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load(&log_level_cur);
}

int log_enabled(enum log_level level)
{
    return (int)level <= atomic_load(&log_level_cur);
}

void log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void log_raw(const char *line, size_t len)
{
    int fd = atomic_load(&log_fd);
    /* One write per line: O_APPEND-free stderr writes of < PIPE_BUF never interleave. */
    while (len > 0) {
        ssize_t n = write(fd, line, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        line += n;
        len -= (size_t)n;
    }
}

static const char *const log_names[] = {"error", "warn", "info", "debug"};

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, log_names[level]);
    if (n < 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: keep room for the newline */
    line[len++] = '\n';
    log_raw(line, len);
}
