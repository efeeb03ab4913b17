/* log.h - the daemon's log: one timestamped line per event on stderr, which
 * a detached daemon points at STATE/lanefs.log. */
#ifndef LANEFS_LOG_H
#define LANEFS_LOG_H

/* Writes "lanefsd TIME [PID] message" and a newline to stderr. */
void log_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
