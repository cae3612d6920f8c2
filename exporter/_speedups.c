/* The exporter's per-scrape inner loops, in C: rendering exposition rows and picking values out of
 * flat-keyed cgroup files (memory.stat, cpu.stat, ...) run tens of thousands of times a scrape; in
 * Python a row cost ~0.3 us (~1.2 us for a value of 1e6 or more) and a pick ~4 us, more than the kernel
 * takes to produce the file (bench/exporter_scrape.py). Also the prefetch of every kept file (fdcache)
 * and its reads, /proc/<pid>/fd counting and the collectors' row appends. exporter/families.py and exporter/readers/fsread.py say what they mean;
 * tests/unit/exporter/test_exporter_speedups.py holds them against pure-Python references and
 * prometheus_client's encoders. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "../hostwatch/core/outbuf.h"

static int out_str(Out *o, PyObject *s) {
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "label text must be str");
        return -1;
    }
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(s, &n); /* ASCII: the string's own buffer */
    return p ? out_put(o, p, n) : -1;
}

static int out_attr(Out *o, PyObject *obj, PyObject *name) {
    PyObject *s = PyObject_GetAttr(obj, name);
    if (!s)
        return -1;
    int r = out_str(o, s);
    Py_DECREF(s);
    return r;
}

static int go_float(Out *o, double x);

/* families.go_value's spelling of v: 1 if written, 0 if v is a case left to the Python function
 * (negative or huge ints, non-finite floats, floats repr writes with an exponent, other types). */
static int go_value(Out *o, PyObject *v) {
    char buf[64];
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred())
            return -1;
        if (overflow || x < 0 || x >= (1LL << 53))
            return 0;
        char d[24];
        int n = decimal_digits((uint64_t)x, d);
        if (x < 1000000) { /* "N.0" */
            memcpy(buf, d, n);
            memcpy(buf + n, ".0", 2);
            return out_put(o, buf, n + 2) < 0 ? -1 : 1;
        }
        int last = n - 1; /* "d.ddd" without trailing zeros, then "e+XX" */
        while (last > 0 && d[last] == '0')
            last--;
        Py_ssize_t k = 0;
        buf[k++] = d[0];
        if (last > 0) {
            buf[k++] = '.';
            memcpy(buf + k, d + 1, last);
            k += last;
        }
        k += snprintf(buf + k, 8, "e+%02d", n - 1);
        return out_put(o, buf, k) < 0 ? -1 : 1;
    }
    if (PyFloat_CheckExact(v)) {
        double x = PyFloat_AS_DOUBLE(v);
        /* the last float written, and its spelling: a scrape writes the same one (container_last_seen)
         * once per container, and repr's shortest-digits search is most of a float row's cost */
        static double last_x;
        static char last_s[64];
        static Py_ssize_t last_n = -1;
        if (last_n >= 0 && memcmp(&x, &last_x, sizeof x) == 0)
            return out_put(o, last_s, last_n) < 0 ? -1 : 1;
        Py_ssize_t start = o->len;
        int written = go_float(o, x);
        if (written == 1 && o->len - start < (Py_ssize_t)sizeof last_s) {
            memcpy(last_s, o->buf + start, o->len - start);
            last_n = o->len - start;
            last_x = x;
        }
        return written;
    }
    return 0;
}

/* go_value's spelling of a float (see go_value). */
static int go_float(Out *o, double x) {
    char buf[64];
    char *s = PyOS_double_to_string(x, 'r', 0, Py_DTSF_ADD_DOT_0, NULL); /* what repr() writes */
    if (!s)
        return -1;
    const char *dot = strchr(s, '.');
    size_t len = strlen(s);
    if (!dot || strpbrk(s, "eni") || len > 40) {
        PyMem_Free(s);
        return 0;
    }
    Py_ssize_t at = dot - s;
    int r;
    if (at > 6 && x > 0) { /* 12345678.9 -> 1.23456789e+07 */
        Py_ssize_t k = 0;
        buf[k++] = s[0];
        buf[k++] = '.';
        memcpy(buf + k, s + 1, at - 1);
        k += at - 1;
        memcpy(buf + k, dot + 1, len - at - 1);
        k += len - at - 1;
        while (k > 0 && (buf[k - 1] == '0' || buf[k - 1] == '.'))
            k--;
        k += snprintf(buf + k, 8, "e+%02d", (int)(at - 1));
        r = out_put(o, buf, k);
    } else {
        r = out_put(o, s, (Py_ssize_t)len);
    }
    PyMem_Free(s);
    return r < 0 ? -1 : 1;
}

static int put_value(Out *o, PyObject *v, PyObject *fallback) {
    int r = go_value(o, v);
    if (r != 0)
        return r < 0 ? -1 : 0;
    PyObject *s = PyObject_CallOneArg(fallback, v);
    if (!s)
        return -1;
    r = out_str(o, s);
    Py_DECREF(s);
    return r;
}

static PyObject *str_full, *str_lead, *str_idimg, *str_name;

static PyObject *finish(Out *o) {
    PyObject *res = PyBytes_FromStringAndSize(o->buf ? o->buf : "", o->len);
    PyMem_Free(o->buf);
    return res;
}

static PyObject *fail(Out *o) {
    PyMem_Free(o->buf);
    return NULL;
}

static PyObject *row_at(PyObject *rows, Py_ssize_t i) {
    PyObject *row = PyList_GET_ITEM(rows, i);
    if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 3) {
        PyErr_SetString(PyExc_TypeError, "a row is a (LabelSet, extra, value) tuple");
        return NULL;
    }
    return row;
}

/* render_plain(head, rows, fallback) -> bytes: per row `head` + ls.full + "} " + value + "\n". */
static PyObject *render_plain(PyObject *self, PyObject *args) {
    PyObject *head, *rows, *fallback;
    if (!PyArg_ParseTuple(args, "UO!O:render_plain", &head, &PyList_Type, &rows, &fallback))
        return NULL;
    Out o = {0};
    Py_ssize_t hn;
    const char *hp = PyUnicode_AsUTF8AndSize(head, &hn);
    if (!hp)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = row_at(rows, i);
        if (!row)
            return fail(&o);
        PyObject *full = PyObject_GetAttr(PyTuple_GET_ITEM(row, 0), str_full);
        if (!full)
            return fail(&o);
        Py_ssize_t fn;
        const char *fp = PyUnicode_Check(full) ? PyUnicode_AsUTF8AndSize(full, &fn) : NULL;
        if (!fp) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "label text must be str");
            Py_DECREF(full);
            return fail(&o);
        }
        if (out_reserve(&o, hn + fn + 2 + 64 + 1) < 0) { /* the row but its value, and a short value */
            Py_DECREF(full);
            return fail(&o);
        }
        char *w = o.buf + o.len;
        memcpy(w, hp, hn);
        memcpy(w + hn, fp, fn);
        memcpy(w + hn + fn, "} ", 2);
        o.len += hn + fn + 2;
        Py_DECREF(full); /* the LabelSet keeps the string (and its UTF-8) alive */
        if (put_value(&o, PyTuple_GET_ITEM(row, 2), fallback) < 0 || out_put(&o, "\n", 1) < 0)
            return fail(&o);
    }
    return finish(&o);
}

/* render_extra(name, rows, parts, fallback) -> bytes: per row
 * name{ls.lead + p[0] + ls.idimg + p[1] + ls.name + p[2]} value, p = parts[row's extra labels]. */
static PyObject *render_extra(PyObject *self, PyObject *args) {
    PyObject *name, *rows, *parts, *fallback;
    if (!PyArg_ParseTuple(args, "UO!O!O:render_extra", &name, &PyList_Type, &rows, &PyDict_Type, &parts,
                          &fallback))
        return NULL;
    Out o = {0};
    Py_ssize_t nn;
    const char *np = PyUnicode_AsUTF8AndSize(name, &nn);
    if (!np)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = row_at(rows, i);
        if (!row)
            return fail(&o);
        PyObject *ls = PyTuple_GET_ITEM(row, 0);
        PyObject *p = PyDict_GetItemWithError(parts, PyTuple_GET_ITEM(row, 1)); /* borrowed */
        if (!p) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_KeyError, "extra labels without rendered parts");
            return fail(&o);
        }
        if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 3) {
            PyErr_SetString(PyExc_TypeError, "parts are 3-tuples of str");
            return fail(&o);
        }
        if (out_put(&o, np, nn) < 0 || out_put(&o, "{", 1) < 0 || out_attr(&o, ls, str_lead) < 0 ||
            out_str(&o, PyTuple_GET_ITEM(p, 0)) < 0 || out_attr(&o, ls, str_idimg) < 0 ||
            out_str(&o, PyTuple_GET_ITEM(p, 1)) < 0 || out_attr(&o, ls, str_name) < 0 ||
            out_str(&o, PyTuple_GET_ITEM(p, 2)) < 0 || out_put(&o, "} ", 2) < 0 ||
            put_value(&o, PyTuple_GET_ITEM(row, 2), fallback) < 0 || out_put(&o, "\n", 1) < 0)
            return fail(&o);
    }
    return finish(&o);
}

#define MAX_KEYS 64

/* The integer after `key ` on line [p, end): a new int, Py_None for anything else (new ref). */
static PyObject *value_of(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    const char *start = p;
    uint64_t x = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        unsigned dgt = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - dgt) / 10)
            Py_RETURN_NONE;
        x = x * 10 + dgt;
        p++;
    }
    if (p == start) /* no digit */
        Py_RETURN_NONE;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
        p++;
    if (p != end)
        Py_RETURN_NONE;
    if (neg) {
        if (x > (uint64_t)INT64_MAX + 1)
            Py_RETURN_NONE;
        return PyLong_FromLongLong(x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(long long)x);
    }
    return PyLong_FromUnsignedLongLong(x);
}

/* pick(data, keys, hints) -> list: the integer value of each key's `key value` line, None where the key
 * has no line or its value is not an integer. hints[i] is the line index where keys[i] was last found
 * (-1: not yet): checked first, and updated when the key is found elsewhere. */
static PyObject *pick(PyObject *self, PyObject *args) {
    Py_buffer data;
    PyObject *keys, *hints;
    if (!PyArg_ParseTuple(args, "y*O!O!:pick", &data, &PyTuple_Type, &keys, &PyList_Type, &hints))
        return NULL;
    PyObject *res = NULL;
    Py_ssize_t nk = PyTuple_GET_SIZE(keys);
    if (nk > MAX_KEYS || PyList_GET_SIZE(hints) != nk) {
        PyErr_SetString(PyExc_ValueError, "pick: at most 64 keys, one hint per key");
        goto done;
    }
    const char *buf = data.buf, *end = buf + data.len;
    /* line starts, found once */
    Py_ssize_t cap = 128, nl = 0;
    const char *stack[128];
    const char **lines = stack;
    for (const char *p = buf; p < end;) {
        if (nl == cap) {
            const char **grown = PyMem_Malloc(sizeof(char *) * cap * 2);
            if (!grown) {
                PyErr_NoMemory();
                goto free_lines;
            }
            memcpy(grown, lines, sizeof(char *) * nl);
            if (lines != stack)
                PyMem_Free(lines);
            lines = grown;
            cap *= 2;
        }
        lines[nl++] = p;
        const char *nlp = memchr(p, '\n', end - p);
        p = nlp ? nlp + 1 : end;
    }
    res = PyList_New(nk);
    if (!res)
        goto free_lines;
    for (Py_ssize_t k = 0; k < nk; k++) {
        PyObject *key = PyTuple_GET_ITEM(keys, k);
        if (!PyBytes_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "pick: keys are bytes");
            Py_CLEAR(res);
            goto free_lines;
        }
        const char *kp = PyBytes_AS_STRING(key);
        Py_ssize_t kn = PyBytes_GET_SIZE(key);
        Py_ssize_t hint = PyLong_AsSsize_t(PyList_GET_ITEM(hints, k));
        if (hint == -1 && PyErr_Occurred()) {
            Py_CLEAR(res);
            goto free_lines;
        }
        Py_ssize_t found = -1;
        for (Py_ssize_t pass = 0; pass < 2 && found < 0; pass++) {
            Py_ssize_t from = pass ? 0 : hint, to = pass ? nl : hint + 1;
            if (!pass && (hint < 0 || hint >= nl))
                continue;
            for (Py_ssize_t i = from; i < to; i++) {
                const char *l = lines[i];
                const char *le = i + 1 < nl ? lines[i + 1] : end;
                if (le - l > kn && memcmp(l, kp, kn) == 0 && (l[kn] == ' ' || l[kn] == '\t')) {
                    found = i;
                    break;
                }
            }
        }
        PyObject *v;
        if (found < 0) {
            v = Py_NewRef(Py_None);
        } else {
            const char *l = lines[found];
            const char *le = found + 1 < nl ? lines[found + 1] : end;
            if (le > l && le[-1] == '\n')
                le--;
            v = value_of(l + kn, le);
            if (!v) {
                Py_CLEAR(res);
                goto free_lines;
            }
            if (found != hint) {
                PyObject *h = PyLong_FromSsize_t(found);
                if (!h || PyList_SetItem(hints, k, h) < 0) {
                    Py_DECREF(v);
                    Py_CLEAR(res);
                    goto free_lines;
                }
            }
        }
        PyList_SET_ITEM(res, k, v);
    }
free_lines:
    if (lines != stack)
        PyMem_Free(lines);
done:
    PyBuffer_Release(&data);
    return res;
}

#define PREAD_BATCH 256

/* pread_all(fds, size) -> dict: {path: the first `size` bytes of its file} for every path -> fd of
 * `fds`, read with pread at offset 0; a file whose read fails is left out. The reads run without the
 * GIL, PREAD_BATCH at a time (a scrape's ~14k reads take ~40 ms of kernel time). */
static PyObject *pread_all(PyObject *self, PyObject *args) {
    PyObject *fds;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "O!n:pread_all", &PyDict_Type, &fds, &size))
        return NULL;
    if (size <= 0 || size > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "pread_all: size out of range");
        return NULL;
    }
    Py_ssize_t n = PyDict_GET_SIZE(fds), count = 0, pos = 0;
    PyObject **paths = PyMem_Calloc(n ? n : 1, sizeof(PyObject *));
    int *fdv = PyMem_Malloc(sizeof(int) * (n ? n : 1));
    Py_ssize_t *lens = PyMem_Malloc(sizeof(Py_ssize_t) * PREAD_BATCH);
    char *buf = PyMem_Malloc((size_t)size * PREAD_BATCH);
    PyObject *out = PyDict_New();
    PyObject *key, *value;
    if (!paths || !fdv || !lens || !buf || !out) {
        if (out)
            PyErr_NoMemory();
        goto fail;
    }
    while (PyDict_Next(fds, &pos, &key, &value)) { /* copied first: the dict may change while unlocked */
        long fd = PyLong_AsLong(value);
        if (fd == -1 && PyErr_Occurred())
            goto fail;
        if (fd < 0 || fd > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "pread_all: not a file descriptor");
            goto fail;
        }
        paths[count] = Py_NewRef(key);
        fdv[count++] = (int)fd;
    }
    for (Py_ssize_t start = 0; start < count; start += PREAD_BATCH) {
        Py_ssize_t m = count - start < PREAD_BATCH ? count - start : PREAD_BATCH;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < m; i++)
            lens[i] = pread(fdv[start + i], buf + (size_t)i * size, (size_t)size, 0);
        Py_END_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < m; i++) {
            if (lens[i] < 0)
                continue;
            PyObject *data = PyBytes_FromStringAndSize(buf + (size_t)i * size, lens[i]);
            if (!data || PyDict_SetItem(out, paths[start + i], data) < 0) {
                Py_XDECREF(data);
                goto fail;
            }
            Py_DECREF(data);
        }
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    if (paths)
        for (Py_ssize_t i = 0; i < count; i++)
            Py_DECREF(paths[i]);
    PyMem_Free(paths);
    PyMem_Free(fdv);
    PyMem_Free(lens);
    PyMem_Free(buf);
    return out;
}

/* add_rows(lists, ls, extra, values): lists[i].append((ls, extra, values[i])), None as 0 (cAdvisor's
 * value for what the kernel does not give); add_labelled(rows, ls, extras, values):
 * rows.append((ls, extras[i], values[i])). A collector's per-container loop of row tuples. */
static PyObject *append_rows(PyObject *lists, PyObject *one, PyObject *ls, PyObject *extra, PyObject *extras,
                             PyObject *values) {
    PyObject *seq = PySequence_Fast(values, "values must be a sequence");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject *zero = PyLong_FromLong(0);
    if (!zero || (lists && PyList_GET_SIZE(lists) != n) || (extras && PyTuple_GET_SIZE(extras) != n)) {
        if (zero)
            PyErr_SetString(PyExc_ValueError, "one value per list (or per extra labels)");
        Py_XDECREF(zero);
        Py_DECREF(seq);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PySequence_Fast_GET_ITEM(seq, i);
        PyObject *target = lists ? PyList_GET_ITEM(lists, i) : one;
        if (!PyList_Check(target)) {
            PyErr_SetString(PyExc_TypeError, "rows must be lists");
            goto fail;
        }
        PyObject *row = PyTuple_Pack(3, ls, extras ? PyTuple_GET_ITEM(extras, i) : extra, v == Py_None ? zero : v);
        if (!row)
            goto fail;
        int r = PyList_Append(target, row);
        Py_DECREF(row);
        if (r < 0)
            goto fail;
    }
    Py_DECREF(zero);
    Py_DECREF(seq);
    Py_RETURN_NONE;
fail:
    Py_DECREF(zero);
    Py_DECREF(seq);
    return NULL;
}

static PyObject *add_rows(PyObject *self, PyObject *args) {
    PyObject *lists, *ls, *extra, *values;
    if (!PyArg_ParseTuple(args, "O!OOO:add_rows", &PyList_Type, &lists, &ls, &extra, &values))
        return NULL;
    return append_rows(lists, NULL, ls, extra, NULL, values);
}

static PyObject *add_labelled(PyObject *self, PyObject *args) {
    PyObject *rows, *ls, *extras, *values;
    if (!PyArg_ParseTuple(args, "O!OO!O:add_labelled", &PyList_Type, &rows, &ls, &PyTuple_Type, &extras, &values))
        return NULL;
    return append_rows(NULL, rows, ls, NULL, extras, values);
}

/* fd_counts(dir) -> (entries, sockets): the entries of a /proc/<pid>/fd directory and how many of them
 * link to "socket:[...]", with readlinkat relative to the open directory (no path walk per fd) and
 * without the GIL. OSError when the directory cannot be opened (the process exited, ...). */
static PyObject *fd_counts(PyObject *self, PyObject *args) {
    PyObject *path;
    if (!PyArg_ParseTuple(args, "O&:fd_counts", PyUnicode_FSConverter, &path))
        return NULL;
    long entries = 0, sockets = 0;
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    int dfd = open(PyBytes_AS_STRING(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
    if (!d) {
        err = errno;
        if (dfd >= 0)
            close(dfd);
    } else {
        struct dirent *e;
        char link[16];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
                continue;
            entries++;
            ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link);
            if (n >= 7 && memcmp(link, "socket:", 7) == 0) /* a failed readlink: closed meanwhile */
                sockets++;
        }
        closedir(d);
    }
    Py_END_ALLOW_THREADS
    if (err) {
        errno = err;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    return Py_BuildValue("(ll)", entries, sockets);
}

/* Taker(fallback, chunk): FdCache.read's fast path, called ~14k times a scrape. Called as
 * taker(owner, path), it hands out (and forgets) what prefetch read for path when that is the whole
 * file (shorter than chunk); anything else goes to fallback(owner, path). `ahead` is the dict of
 * prefetched files. */
typedef struct {
    PyObject_HEAD
    PyObject *ahead;
    PyObject *fallback;
    Py_ssize_t chunk;
} Taker;

static PyObject *Taker_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *fallback;
    Py_ssize_t chunk;
    if (!PyArg_ParseTuple(args, "On:Taker", &fallback, &chunk))
        return NULL;
    Taker *self = (Taker *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->fallback = Py_NewRef(fallback);
    self->ahead = PyDict_New();
    self->chunk = chunk;
    if (!self->ahead) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int Taker_traverse(Taker *self, visitproc visit, void *arg) {
    Py_VISIT(self->ahead);
    Py_VISIT(self->fallback);
    return 0;
}

static int Taker_clear(Taker *self) {
    Py_CLEAR(self->ahead);
    Py_CLEAR(self->fallback);
    return 0;
}

static void Taker_dealloc(Taker *self) {
    PyObject_GC_UnTrack(self);
    Taker_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Taker_call(Taker *self, PyObject *args, PyObject *kwds) {
    if (!kwds && PyTuple_GET_SIZE(args) == 2 && self->ahead) {
        PyObject *path = PyTuple_GET_ITEM(args, 1);
        PyObject *data = PyDict_GetItemWithError(self->ahead, path); /* borrowed */
        if (data) {
            Py_INCREF(data);
            if (PyDict_DelItem(self->ahead, path) < 0) {
                Py_DECREF(data);
                return NULL;
            }
            if (PyBytes_Check(data) && PyBytes_GET_SIZE(data) < self->chunk)
                return data;
            Py_DECREF(data); /* a longer file: read whole by the fallback */
        } else if (PyErr_Occurred()) {
            return NULL;
        }
    }
    return PyObject_Call(self->fallback, args, kwds);
}

static PyObject *Taker_get_ahead(Taker *self, void *closure) {
    return Py_NewRef(self->ahead ? self->ahead : Py_None);
}

static int Taker_set_ahead(Taker *self, PyObject *value, void *closure) {
    if (!value || !PyDict_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "ahead must be a dict");
        return -1;
    }
    Py_XSETREF(self->ahead, Py_NewRef(value));
    return 0;
}

static PyGetSetDef Taker_getset[] = {
    {"ahead", (getter)Taker_get_ahead, (setter)Taker_set_ahead, "prefetched files: path -> bytes", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TakerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exporter._speedups.Taker",
    .tp_basicsize = sizeof(Taker),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = Taker_new,
    .tp_dealloc = (destructor)Taker_dealloc,
    .tp_traverse = (traverseproc)Taker_traverse,
    .tp_clear = (inquiry)Taker_clear,
    .tp_call = (ternaryfunc)Taker_call,
    .tp_getset = Taker_getset,
    .tp_doc = "FdCache.read's fast path over the prefetched files",
};

static PyMethodDef methods[] = {
    {"add_rows", add_rows, METH_VARARGS, "one row into each of a container's families"},
    {"add_labelled", add_labelled, METH_VARARGS, "a container's rows of one family, one per extra labels"},
    {"fd_counts", fd_counts, METH_VARARGS, "(entries, sockets) of a /proc/<pid>/fd directory"},
    {"pread_all", pread_all, METH_VARARGS, "the first bytes of every kept file, read with pread"},
    {"render_plain", render_plain, METH_VARARGS, "rows of a family without extra labels, as UTF-8"},
    {"render_extra", render_extra, METH_VARARGS, "rows of a family with extra labels, as UTF-8"},
    {"pick", pick, METH_VARARGS, "integer values of keys in a flat-keyed file"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "exporter._speedups",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    str_full = PyUnicode_InternFromString("full");
    str_lead = PyUnicode_InternFromString("lead");
    str_idimg = PyUnicode_InternFromString("idimg");
    str_name = PyUnicode_InternFromString("name");
    if (!str_full || !str_lead || !str_idimg || !str_name || PyType_Ready(&TakerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    if (PyModule_AddObjectRef(m, "Taker", (PyObject *)&TakerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
