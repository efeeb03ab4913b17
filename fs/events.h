/* events.h - what the daemon tells the volume's journal (journal/journal.h):
 * thin helpers that fill in the agent, the session and the view path, and
 * cost nothing when the volume has no journal. */
#ifndef LANEFS_EVENTS_H
#define LANEFS_EVENTS_H

#include <stdint.h>
#include <sys/types.h>

#include "journal/journal.h"

struct ovl_fs;

/* True when events of fs are written anywhere. */
int  ev_on(const struct ovl_fs *fs);
/* Logs ev for the view fs (agent and session filled in; rel and rel2 are
 * view paths without the leading '/', turned into "/rel"). */
void ev_log(struct ovl_fs *fs, struct journal_event *ev, const char *rel,
            const char *rel2);
/* Shorthand: op on rel (and rel2) by process pid, with a detail. */
void ev_op(struct ovl_fs *fs, const char *op, const char *rel, const char *rel2,
           pid_t pid, const char *detail);
/* The name of process pid (its /proc comm) into buf; "" when it is gone. */
const char *proc_comm(pid_t pid, char *buf, size_t len);
/* The same, cached in fs for the last pid asked (takes fs->handle_lock). */
const char *ev_comm(struct ovl_fs *fs, pid_t pid, char *buf, size_t len);
/* An empty event: every number "none". */
struct journal_event ev_blank(const char *op);

#endif
