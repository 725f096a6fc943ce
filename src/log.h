/* log.h -- a tiny leveled logger: one timestamped line per message, to stderr. */
#ifndef FULCRUM_LOG_H
#define FULCRUM_LOG_H

#include <stdio.h>

/* Same order as config_log_level, so a config value converts with a cast. */
enum log_level {
    LOG_ERROR,
    LOG_WARN,
    LOG_INFO,
    LOG_DEBUG,
};

/* Messages above `level` are dropped. Default LOG_INFO. Thread-safe (an atomic). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* True when a message at `level` would be written: test it before formatting costly text. */
int log_enabled(enum log_level level);

/*
 * Writes "2024-05-01T12:00:00.123Z LEVEL message\n" to the log stream (stderr unless
 * log_set_stream) with one write(2), so lines from several threads never interleave.
 * Messages longer than about 4 KiB are truncated. Never fails visibly.
 */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes an already formatted line (no level, no timestamp added) to the stream. */
void log_raw(const char *line, size_t len);

/* Sends log lines to `fd` instead of stderr (2). For tests and access logs. */
void log_set_fd(int fd);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (log_enabled(LOG_DEBUG))                                                                \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                                       \
    } while (0)

#endif
