/* table.c - padded text tables. */
#include "tools/table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int tbl_init(struct tbl *t, size_t ncols, const char *const *header)
{
    memset(t, 0, sizeof(*t));
    if (ncols == 0 || ncols > TBL_MAX_COLS)
        return -EINVAL;
    t->ncols = ncols;
    return tbl_add(t, header);
}

int tbl_add(struct tbl *t, const char *const *cells)
{
    if (t->rows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));
        if (!c)
            return -ENOMEM;
        t->cells = c;
        char **n = realloc(t->notes, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        t->notes = n;
        t->cap = cap;
    }
    char **row = t->cells + t->rows * t->ncols;
    for (size_t i = 0; i < t->ncols; i++) {
        row[i] = strdup(cells[i] ? cells[i] : "");
        if (!row[i]) {
            while (i-- > 0)
                free(row[i]);
            return -ENOMEM;
        }
    }
    t->notes[t->rows] = NULL;
    t->rows++;
    return 0;
}

int tbl_note(struct tbl *t, const char *line)
{
    if (t->rows == 0)
        return -EINVAL;
    char **n = &t->notes[t->rows - 1];
    size_t old = *n ? strlen(*n) : 0, add = strlen(line);
    char *s = realloc(*n, old + add + 2);
    if (!s)
        return -ENOMEM;
    memcpy(s + old, line, add);
    s[old + add] = '\n';
    s[old + add + 1] = '\0';
    *n = s;
    return 0;
}

void tbl_print(const struct tbl *t, FILE *out)
{
    size_t w[TBL_MAX_COLS] = { 0 };
    for (size_t r = 0; r < t->rows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            size_t l = strlen(t->cells[r * t->ncols + c]);
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->rows; r++) {
        /* Cells are padded only up to the last non-empty one. */
        size_t last = t->ncols;
        while (last > 1 && !t->cells[r * t->ncols + last - 1][0])
            last--;
        for (size_t c = 0; c < last; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (c + 1 == last)
                fprintf(out, "%s\n", s);
            else
                fprintf(out, "%-*s  ", (int)w[c], s);
        }
        /* Notes: each line indented. */
        for (const char *n = t->notes[r]; n && *n;) {
            size_t l = strcspn(n, "\n");
            fprintf(out, "    %.*s\n", (int)l, n);
            n += l + (n[l] == '\n');
        }
    }
}

void tbl_free(struct tbl *t)
{
    for (size_t i = 0; i < t->rows * t->ncols; i++)
        free(t->cells[i]);
    for (size_t r = 0; r < t->rows; r++)
        free(t->notes[r]);
    free(t->cells);
    free(t->notes);
    memset(t, 0, sizeof(*t));
}
