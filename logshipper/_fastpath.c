/* docker_json's fast path in C: the two per-line steps of an ordinary json-file chunk, ~1.2 us a line
 * in Python (half of the shipper's own CPU per line, bench/shipper_throughput.py).
 *
 * columns(lines, docs, offset, max_message_bytes): for dockerjson_lines.decode_columns, the chunk's
 *   parsed lines (orjson's dicts) as columns when every line is an ordinary one (its docstring says
 *   which), else None: (messages, times, streams, offsets, oldest_ns).
 * render(parts, streams, times, messages, offsets, sequence): the ECS record of each line, the bytes
 *   ecs.render_lines writes (orjson's spelling of the message), from the line template's six constant
 *   parts per stream (ecs.line_template_parts).
 *
 * tests/unit/logshipper/test_dockerjson_lines.py holds both to the line decoder (dockerjson.decode_lines)
 * and the event encoder (ecs.encode). */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "../hostwatch/core/outbuf.h"

#define TIME_LEN 30 /* "YYYY-MM-DDTHH:MM:SS.fffffffffZ" */
#define NS 1000000000LL

static PyObject *key_log, *key_stream, *key_time;

static int digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

static long long days_from_civil(long long y, unsigned m, unsigned d) { /* H. Hinnant's algorithm */
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

/* Epoch seconds of a canonical "YYYY-MM-DDTHH:MM:SS" (what ecs.timestamp prints for its second: a
 * four-digit year, a real date and time); -1 with *ok 0 otherwise. */
static long long second_of(const char *t, int *ok) {
    int y, mo, d, h, mi, s;
    *ok = 0;
    if (t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' || t[16] != ':')
        return -1;
    if (!digits(t, 4, &y) || !digits(t + 5, 2, &mo) || !digits(t + 8, 2, &d) || !digits(t + 11, 2, &h) ||
        !digits(t + 14, 2, &mi) || !digits(t + 17, 2, &s))
        return -1;
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1000 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59)
        return -1;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > dim[mo - 1] + (mo == 2 && leap))
        return -1;
    *ok = 1;
    return days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + s;
}

/* Docker trims the fraction's trailing zeros (RFC3339Nano); @timestamp keeps nine digits.
 * A new reference: the padded time, or t itself. */
static PyObject *pad(PyObject *t) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(t);
    if (n == 0 || PyUnicode_READ_CHAR(t, n - 1) != 'Z')
        return Py_NewRef(t);
    if (n == TIME_LEN)
        return Py_NewRef(t);
    if (!PyUnicode_IS_ASCII(t))
        return Py_NewRef(t); /* fails the time check anyway */
    const char *s = (const char *)PyUnicode_DATA(t);
    char buf[TIME_LEN];
    if (n == 20) {
        memcpy(buf, s, 19);
        memcpy(buf + 19, ".000000000Z", 11);
    } else if (21 < n && n < TIME_LEN && s[19] == '.') {
        memcpy(buf, s, n - 1);
        memset(buf + n - 1, '0', TIME_LEN - n);
        buf[TIME_LEN - 1] = 'Z';
    } else {
        return Py_NewRef(t);
    }
    return PyUnicode_FromStringAndSize(buf, TIME_LEN);
}

/* Every time "YYYY-MM-DDTHH:MM:SS.fffffffffZ" with a canonical second; the oldest one's epoch second
 * and nanoseconds in it (its nanoseconds since the epoch overflow 64 bits before 1677). */
static int times_ok(PyObject *times, long long *oldest_secs, int *oldest_frac) {
    Py_ssize_t n = PyList_GET_SIZE(times);
    const char *oldest = NULL, *last_sec = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyList_GET_ITEM(times, i);
        if (PyUnicode_GET_LENGTH(t) != TIME_LEN || !PyUnicode_IS_ASCII(t))
            return 0;
        const char *s = (const char *)PyUnicode_DATA(t);
        if (s[19] != '.' || s[29] != 'Z')
            return 0;
        for (int k = 20; k < 29; k++)
            if (s[k] < '0' || s[k] > '9')
                return 0;
        if (!last_sec || memcmp(s, last_sec, 19) != 0) { /* a chunk's lines share few seconds */
            int ok;
            second_of(s, &ok);
            if (!ok)
                return 0;
            last_sec = s;
        }
        if (!oldest || memcmp(s, oldest, TIME_LEN) < 0)
            oldest = s;
    }
    if (!oldest)
        return 0;
    int ok, frac = 0;
    *oldest_secs = second_of(oldest, &ok);
    digits(oldest + 20, 9, &frac);
    *oldest_frac = frac;
    return 1;
}

static PyObject *columns(PyObject *self, PyObject *args) {
    PyObject *lines, *docs;
    long long offset;
    Py_ssize_t max_bytes;
    if (!PyArg_ParseTuple(args, "O!O!Ln:columns", &PyList_Type, &lines, &PyList_Type, &docs, &offset, &max_bytes))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(lines);
    if (n == 0 || PyList_GET_SIZE(docs) != n)
        Py_RETURN_NONE;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PyList_GET_ITEM(docs, i), *line = PyList_GET_ITEM(lines, i);
        if (!PyDict_CheckExact(d) || PyDict_GET_SIZE(d) != 3 || !PyBytes_Check(line) ||
            PyBytes_GET_SIZE(line) > max_bytes)
            Py_RETURN_NONE;
    }
    PyObject *messages = PyList_New(n), *times = PyList_New(n), *streams = PyList_New(n), *offsets = PyList_New(n);
    PyObject *res = NULL;
    if (!messages || !times || !streams || !offsets)
        goto done;
    long long off = offset;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *d = PyList_GET_ITEM(docs, i);
        PyObject *log = PyDict_GetItemWithError(d, key_log);
        PyObject *stream = log ? PyDict_GetItemWithError(d, key_stream) : NULL;
        PyObject *t = stream ? PyDict_GetItemWithError(d, key_time) : NULL;
        if (!t) {
            if (PyErr_Occurred())
                goto done;
            res = Py_NewRef(Py_None);
            goto done;
        }
        if (!PyUnicode_Check(log) || !PyUnicode_Check(stream) || !PyUnicode_Check(t)) {
            res = Py_NewRef(Py_None);
            goto done;
        }
        Py_ssize_t ln = PyUnicode_GET_LENGTH(log);
        if (ln == 0 || PyUnicode_READ_CHAR(log, ln - 1) != '\n') { /* a Docker partial line */
            res = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *m = PyUnicode_Substring(log, 0, ln - 1);
        PyObject *padded = m ? pad(t) : NULL;
        PyObject *o = padded ? PyLong_FromLongLong(off) : NULL;
        if (!o) {
            Py_XDECREF(m);
            Py_XDECREF(padded);
            goto done;
        }
        PyList_SET_ITEM(messages, i, m);
        PyList_SET_ITEM(times, i, padded);
        PyList_SET_ITEM(streams, i, Py_NewRef(stream));
        PyList_SET_ITEM(offsets, i, o);
        off += PyBytes_GET_SIZE(PyList_GET_ITEM(lines, i)) + 1;
    }
    long long oldest_secs;
    int oldest_frac;
    if (!times_ok(times, &oldest_secs, &oldest_frac)) {
        res = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *secs = PyLong_FromLongLong(oldest_secs), *ns = PyLong_FromLongLong(NS), *frac = PyLong_FromLong(oldest_frac);
    PyObject *scaled = secs && ns && frac ? PyNumber_Multiply(secs, ns) : NULL;
    PyObject *oldest_ns = scaled ? PyNumber_Add(scaled, frac) : NULL;
    Py_XDECREF(secs);
    Py_XDECREF(ns);
    Py_XDECREF(frac);
    Py_XDECREF(scaled);
    if (oldest_ns) {
        res = Py_BuildValue("(OOOON)", messages, times, streams, offsets, oldest_ns);
    }
done:
    Py_XDECREF(messages);
    Py_XDECREF(times);
    Py_XDECREF(streams);
    Py_XDECREF(offsets);
    return res;
}

static inline void put(Out *o, const char *s, Py_ssize_t n) { /* after out_reserve() */
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void put_int(Out *o, long long v) { /* after out_reserve() */
    if (v < 0)
        o->buf[o->len++] = '-';
    o->len += decimal_digits(v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v, o->buf + o->len);
}

/* orjson's JSON string of UTF-8 text s: quotes, \" \\ \b \f \n \r \t, \u00XX for other controls,
 * everything else as it is. After out_reserve(2 + 6 * n). */
static void put_json_string(Out *o, const char *s, Py_ssize_t n) {
    static const char hex[] = "0123456789abcdef";
    char *w = o->buf + o->len;
    *w++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *w++ = (char)c;
            continue;
        }
        *w++ = '\\';
        switch (c) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '\b': *w++ = 'b'; break;
        case '\f': *w++ = 'f'; break;
        case '\n': *w++ = 'n'; break;
        case '\r': *w++ = 'r'; break;
        case '\t': *w++ = 't'; break;
        default:
            *w++ = 'u';
            *w++ = '0';
            *w++ = '0';
            *w++ = hex[c >> 4];
            *w++ = hex[c & 15];
        }
    }
    *w++ = '"';
    o->len = w - o->buf;
}

static PyObject *render(PyObject *self, PyObject *args) {
    PyObject *parts_by_stream, *streams, *times, *messages, *offsets;
    long long sequence;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!L:render", &PyDict_Type, &parts_by_stream, &PyList_Type, &streams,
                          &PyList_Type, &times, &PyList_Type, &messages, &PyList_Type, &offsets, &sequence))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(messages);
    if (PyList_GET_SIZE(streams) != n || PyList_GET_SIZE(times) != n || PyList_GET_SIZE(offsets) != n) {
        PyErr_SetString(PyExc_ValueError, "render: columns of different lengths");
        return NULL;
    }
    PyObject *out = PyList_New(n);
    if (!out)
        return NULL;
    Out o = {0};
    PyObject *last_stream = NULL, *parts = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *stream = PyList_GET_ITEM(streams, i);
        if (stream != last_stream) {
            parts = PyDict_GetItemWithError(parts_by_stream, stream); /* borrowed */
            if (!parts || !PyTuple_Check(parts) || PyTuple_GET_SIZE(parts) != 6) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_KeyError, "render: no template parts for a stream");
                goto fail;
            }
            last_stream = stream;
        }
        Py_ssize_t mn, tn;
        const char *m = PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(messages, i), &mn);
        const char *t = m ? PyUnicode_AsUTF8AndSize(PyList_GET_ITEM(times, i), &tn) : NULL;
        if (!t)
            goto fail; /* a lone surrogate, as orjson.dumps refuses it */
        long long off = PyLong_AsLongLong(PyList_GET_ITEM(offsets, i));
        if (off == -1 && PyErr_Occurred())
            goto fail;
        Py_ssize_t need = tn + 2 + 6 * mn + 3 * 24;
        for (int k = 0; k < 6; k++) {
            PyObject *p = PyTuple_GET_ITEM(parts, k);
            if (!PyBytes_Check(p)) {
                PyErr_SetString(PyExc_TypeError, "render: template parts are bytes");
                goto fail;
            }
            need += PyBytes_GET_SIZE(p);
        }
        o.len = 0;
        if (out_reserve(&o, need) < 0)
            goto fail;
#define PART(k) put(&o, PyBytes_AS_STRING(PyTuple_GET_ITEM(parts, k)), PyBytes_GET_SIZE(PyTuple_GET_ITEM(parts, k)))
        PART(0);
        put(&o, t, tn);
        PART(1);
        put_json_string(&o, m, mn);
        PART(2);
        put_int(&o, off);
        PART(3);
        put_int(&o, sequence + i);
        PART(4);
        put_int(&o, off);
        PART(5);
#undef PART
        PyObject *v = PyBytes_FromStringAndSize(o.buf, o.len);
        if (!v)
            goto fail;
        PyList_SET_ITEM(out, i, v);
    }
    PyMem_Free(o.buf);
    return out;
fail:
    PyMem_Free(o.buf);
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"columns", columns, METH_VARARGS, "a chunk's columns, as dockerjson_lines.decode_columns makes them"},
    {"render", render, METH_VARARGS, "the ECS records of a LineBatch's lines, as ecs.render_lines writes them"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "logshipper._fastpath",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    key_log = PyUnicode_InternFromString("log");
    key_stream = PyUnicode_InternFromString("stream");
    key_time = PyUnicode_InternFromString("time");
    if (!key_log || !key_stream || !key_time)
        return NULL;
    return PyModule_Create(&module);
}
