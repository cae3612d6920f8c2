/* A growable byte buffer for the C extensions' writers (exporter/_speedups.c, logshipper/_fastpath.c).
 * Include after Python.h. */

#ifndef HOSTWATCH_OUTBUF_H
#define HOSTWATCH_OUTBUF_H

#include <stdint.h>
#include <string.h>

typedef struct {
    char *buf;
    Py_ssize_t len, cap;
} Out;

/* Room for `need` more bytes; -1 with MemoryError set. */
static inline int out_reserve(Out *o, Py_ssize_t need) {
    if (o->len + need <= o->cap)
        return 0;
    Py_ssize_t cap = o->cap ? o->cap : 16384;
    while (cap < o->len + need)
        cap *= 2;
    char *b = PyMem_Realloc(o->buf, cap);
    if (!b) {
        PyErr_NoMemory();
        return -1;
    }
    o->buf = b;
    o->cap = cap;
    return 0;
}

/* Append n bytes, growing as needed. */
static inline int out_put(Out *o, const char *s, Py_ssize_t n) {
    if (out_reserve(o, n) < 0)
        return -1;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* Decimal digits of x into d (no terminator, at most 20); returns their count. */
static inline int decimal_digits(uint64_t x, char *d) {
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + x % 10);
        x /= 10;
    } while (x);
    for (int i = 0; i < n; i++)
        d[i] = tmp[n - 1 - i];
    return n;
}

#endif
