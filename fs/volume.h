/* volume.h - what all agents' views of one volume share: its configuration
 * and its lower. */
#ifndef LANEFS_VOLUME_H
#define LANEFS_VOLUME_H

#include <stddef.h>
#include <sys/types.h>

#include "fs/config.h"

struct volume {
    char *state_dir;          /* absolute */
    struct vol_config cfg;
    int lower_fd;             /* read-only detached mount when possible */
    dev_t lower_dev;
    ino_t lower_ino;
};

/* Loads STATE's configuration and opens its lower. On error err holds a
 * one-line message and *v holds nothing to free. 0 or -errno. */
int  volume_open(struct volume *v, const char *state_dir, char *err, size_t errlen);
void volume_close(struct volume *v);

#endif
