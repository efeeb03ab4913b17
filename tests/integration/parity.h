/* parity.h - one fixed sequence of system calls, logged call by call, so its
 * results on a lanefs mount can be compared with a plain directory. */
#ifndef LANEFS_IT_PARITY_H
#define LANEFS_IT_PARITY_H

#include <stddef.h>

struct plog {
    char **line;
    size_t n, cap;
};

/* Creates the starting tree of the sequence in dir (which must exist). */
void parity_build_tree(const char *dir);

/* Runs the sequence with base (an existing directory holding the starting
 * tree) as the working directory of every call, logging into *log: each
 * call's text, its result and errno, and what it read back. The log is
 * divided into sections, each starting with a line "== name". The caller
 * sets the umask. */
void parity_run(const char *base, struct plog *log);

#endif
