/* events.c - building journal events from a view's requests. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "fs/events.h"
#include "fs/ovl_i.h"

int ev_on(const struct ovl_fs *fs)
{
    return fs->vol && fs->vol->journal;
}

struct journal_event ev_blank(const char *op)
{
    return (struct journal_event){ .op = op, .pid = -1, .handle = -1,
                                   .bytes_read = -1, .bytes_written = -1,
                                   .size = -1 };
}

const char *proc_comm(pid_t pid, char *buf, size_t len)
{
    char p[64];
    snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
    FILE *f = pid > 0 ? fopen(p, "re") : NULL;
    buf[0] = '\0';
    if (f) {
        if (fgets(buf, (int)len, f))
            buf[strcspn(buf, "\n")] = '\0';
        fclose(f);
    }
    return buf;
}

const char *ev_comm(struct ovl_fs *fs, pid_t pid, char *buf, size_t len)
{
    /* Most requests of a view come from the process that sent the last
     * one: keep its name rather than read /proc each time. */
    pthread_mutex_lock(&fs->handle_lock);
    if (fs->comm_pid == pid && pid > 0) {
        snprintf(buf, len, "%s", fs->comm);
        pthread_mutex_unlock(&fs->handle_lock);
        return buf;
    }
    pthread_mutex_unlock(&fs->handle_lock);
    proc_comm(pid, buf, len);
    pthread_mutex_lock(&fs->handle_lock);
    fs->comm_pid = pid;
    snprintf(fs->comm, sizeof(fs->comm), "%s", buf);
    pthread_mutex_unlock(&fs->handle_lock);
    return buf;
}

void ev_log(struct ovl_fs *fs, struct journal_event *ev, const char *rel,
            const char *rel2)
{
    char p1[PATH_MAX + 2], p2[PATH_MAX + 2];
    if (!ev_on(fs))
        return;
    ev->agent = fs->agent;
    ev->session = fs->sid;
    if (rel) {
        snprintf(p1, sizeof(p1), "/%s", rel);
        ev->path = p1;
    }
    if (rel2) {
        snprintf(p2, sizeof(p2), "/%s", rel2);
        ev->path2 = p2;
    }
    journal_log(fs->vol->journal, ev);
}

void ev_op(struct ovl_fs *fs, const char *op, const char *rel, const char *rel2,
           pid_t pid, const char *detail)
{
    char comm[32];
    if (!ev_on(fs))
        return;
    struct journal_event ev = ev_blank(op);
    ev.pid = pid > 0 ? pid : -1;
    ev.comm = pid > 0 ? ev_comm(fs, pid, comm, sizeof(comm)) : NULL;
    ev.detail = detail;
    ev_log(fs, &ev, rel, rel2);
}
