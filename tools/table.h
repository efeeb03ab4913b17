/* table.h - text tables for commands that print state: columns padded to
 * their widest cell, two blanks apart. */
#ifndef LANEFS_TABLE_H
#define LANEFS_TABLE_H

#include <stddef.h>
#include <stdio.h>

#define TBL_MAX_COLS 12

struct tbl {
    size_t ncols;
    char **cells;            /* row-major, rows * ncols */
    size_t rows, cap;
    char **notes;            /* text printed under a row, or NULL */
};

/* Starts a table whose first row is the header (ncols names). Returns 0
 * or -ENOMEM / -EINVAL (ncols over TBL_MAX_COLS). */
int tbl_init(struct tbl *t, size_t ncols, const char *const *header);

/* Adds a row of t->ncols cells (copied). Returns 0 or -ENOMEM. */
int tbl_add(struct tbl *t, const char *const *cells);

/* Appends a line (copied, printed indented by 4 under the last row).
 * Returns 0 or -ENOMEM. */
int tbl_note(struct tbl *t, const char *line);

/* Prints the table; a row ends at its last non-empty cell, unpadded. */
void tbl_print(const struct tbl *t, FILE *out);

/* Frees what t owns and zeroes it. */
void tbl_free(struct tbl *t);

#endif
