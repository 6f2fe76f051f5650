/*
 * Optional compiled kernel of batch Example decoding (see _gather.py: the pure-Python path
 * is the oracle and the fallback). It is one of the two hand-written readers of the wire
 * format; wire.py is the other, the Python reference (layout of the messages there).
 *
 *   gather_columns(records, keys) -> list of per-key tuples, or None
 *
 * One walk over each record's wire format (Example -> Features -> map entries -> Feature ->
 * BytesList/FloatList/Int64List) produces, for every wanted key (UTF-8 bytes), the column
 * pieces that _columns.py would otherwise decode from re-serialized Features:
 *
 *   (tags, counts, ints, floats, values, flags)
 *   tags    bytearray of int64: the Feature tag of the kind record r holds (0, 0x0a, 0x12, 0x1a)
 *   counts  bytearray of int64: how many values record r holds, -1 when missing or kindless
 *   ints    bytearray of native int64, floats bytearray of native float32 (raw bits kept):
 *           the values of the records holding that kind, in record order
 *   values  list of bytes: the same for bytes lists
 *   flags   bit k set when a record held kind k (FLAG_NONE, FLAG_BYTES, ...), FLAG_UNKNOWN
 *           when a kept Feature or its list carries unknown fields (the pure path decodes
 *           such columns differently, through Python floats, so the caller redoes them)
 *
 * It follows protobuf's (upb's) parsing rules: all fields validated, whether wanted or not
 * (varints of at most 10 bytes, tags of at most 5 bytes and < 2**32, field 0 rejected,
 * lengths of at most 5 bytes and within the message, packed float lengths a multiple of 4,
 * map keys valid UTF-8); packed and unpacked repeated encodings; unknown fields skipped by
 * wire type; a submessage seen twice merged; a oneof member replacing another clears it;
 * the last map entry of a key wins. It never builds an error: anything protobuf would reject,
 * and anything it does not model (groups, map entries with unknown fields, which protobuf
 * drops), makes it return None and the caller takes the pure path, which raises the
 * exact DecodeError. Being stricter than protobuf is therefore safe, never laxer.
 *
 * The walk touches no Python object: for big batches it runs without the GIL; only the
 * results (bytes values, bytearrays) are made with it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { TAG_BYTES = 0x0A, TAG_FLOAT = 0x12, TAG_INT64 = 0x1A };
enum { FLAG_NONE = 1, FLAG_BYTES = 2, FLAG_FLOAT = 4, FLAG_INT64 = 8, FLAG_UNKNOWN = 16 };
enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };
/* Below this many record bytes, dropping and retaking the GIL costs more than it frees. */
#define NOGIL_BYTES (64 * 1024)

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} cursor;

/* ---- wire primitives: each returns 0 when protobuf would reject the bytes ---- */

static inline int read_varint(cursor *c, uint64_t *out) {
    const uint8_t *p = c->p;
    if (p < c->end && *p < 0x80) {
        *out = *p;
        c->p = p + 1;
        return 1;
    }
    uint64_t value = 0;
    for (int i = 0; i < 10; i++) {
        if (p + i >= c->end) return 0;
        uint8_t byte = p[i];
        value |= (uint64_t)(byte & 0x7F) << (7 * i); /* bits past 64 are dropped, as protobuf does */
        if (byte < 0x80) {
            *out = value;
            c->p = p + i + 1;
            return 1;
        }
    }
    return 0;
}

static inline int read_tag(cursor *c, uint32_t *field, int *wire_type) {
    const uint8_t *start = c->p;
    uint64_t tag;
    if (start < c->end && *start < 0x80) {
        tag = *start;
        c->p = start + 1;
    } else if (!read_varint(c, &tag) || c->p - start > 5 || tag > 0xFFFFFFFFu) {
        return 0;
    }
    *field = (uint32_t)(tag >> 3);
    *wire_type = (int)(tag & 7);
    return *field != 0;
}

/* A length-delimited payload: [*start, *stop) within the cursor, which moves past it. */
static inline int read_len(cursor *c, cursor *payload) {
    const uint8_t *start = c->p;
    uint64_t size;
    if (!read_varint(c, &size) || c->p - start > 5 || size >= 0x7FFFFFFFu) return 0;
    if (size > (uint64_t)(c->end - c->p)) return 0;
    payload->p = c->p;
    payload->end = c->p + size;
    c->p = payload->end;
    return 1;
}

/* Skips an unknown field's value. Groups (3, 4) are not modelled: the caller falls back. */
static inline int skip_value(cursor *c, int wire_type) {
    uint64_t ignored;
    cursor payload;
    switch (wire_type) {
    case WT_VARINT:
        return read_varint(c, &ignored);
    case WT_FIXED64:
        if (c->end - c->p < 8) return 0;
        c->p += 8;
        return 1;
    case WT_LEN:
        return read_len(c, &payload);
    case WT_FIXED32:
        if (c->end - c->p < 4) return 0;
        c->p += 4;
        return 1;
    default:
        return 0;
    }
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as protobuf checks
 * proto3 string fields. */
static int valid_utf8(const uint8_t *p, const uint8_t *end) {
    while (p < end) {
        uint8_t b = *p;
        if (b < 0x80) {
            p++;
            continue;
        }
        Py_ssize_t n;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) {
            n = 1;
        } else if (b >= 0xE0 && b <= 0xEF) {
            n = 2;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            n = 3;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else {
            return 0;
        }
        if (end - p <= n) return 0;
        if (p[1] < lo || p[1] > hi) return 0;
        for (Py_ssize_t i = 2; i <= n; i++)
            if ((p[i] & 0xC0) != 0x80) return 0;
        p += n + 1;
    }
    return 1;
}

/* ---- growable output arrays (plain C memory: usable without the GIL) ---- */

typedef struct {
    char *data;
    size_t size, capacity; /* in bytes */
} vec;

static int vec_reserve(vec *v, size_t extra) {
    if (v->capacity - v->size >= extra) return 1;
    size_t want = v->capacity ? v->capacity : 256;
    while (want - v->size < extra) {
        if (want > SIZE_MAX / 2) return 0;
        want *= 2;
    }
    char *grown = realloc(v->data, want);
    if (grown == NULL) return 0;
    v->data = grown;
    v->capacity = want;
    return 1;
}

typedef struct {
    const uint8_t *p;
    Py_ssize_t len;
} span;

/* ---- per-key state ---- */

typedef struct {
    const uint8_t *name;
    Py_ssize_t name_len;
    int64_t *tags;   /* n, in the tags bytearray */
    int64_t *counts; /* n, in the counts bytearray */
    vec ints, floats, spans;
    int flags;
    /* the record being walked */
    cursor entry;     /* the last map entry of this key (entry.p NULL: none) */
    int entry_walked; /* every Feature of `entry` already validated */
} key_state;

/* One kept Feature being decoded (oneof merge semantics). */
typedef struct {
    int kind; /* 0 or TAG_* */
    int feature_unknown, list_unknown;
    size_t marks[3]; /* sizes of ints, floats, spans when this record started */
} feature_state;

typedef struct {
    key_state *keys;
    Py_ssize_t nkeys;
    Py_ssize_t next_guess; /* records usually list keys in the same order */
    int out_of_memory;
} scan;

static key_state *find_key(scan *s, const uint8_t *name, Py_ssize_t len) {
    Py_ssize_t n = s->nkeys;
    for (Py_ssize_t i = 0, k = s->next_guess; i < n; i++, k++) {
        if (k >= n) k = 0;
        key_state *key = &s->keys[k];
        if (key->name_len == len && memcmp(key->name, name, (size_t)len) == 0) {
            s->next_guess = k + 1 < n ? k + 1 : 0;
            return key;
        }
    }
    return NULL;
}

/* A BytesList/FloatList/Int64List payload. key NULL: validate only. */
static int walk_list(scan *s, cursor c, int kind, key_state *key, feature_state *f) {
    uint32_t field;
    int wire_type;
    while (c.p < c.end) {
        if (!read_tag(&c, &field, &wire_type)) return 0;
        if (field == 1 && kind == TAG_BYTES && wire_type == WT_LEN) {
            cursor value;
            if (!read_len(&c, &value)) return 0;
            if (key) {
                if (!vec_reserve(&key->spans, sizeof(span))) goto nomem;
                span item = {value.p, (Py_ssize_t)(value.end - value.p)};
                memcpy(key->spans.data + key->spans.size, &item, sizeof item);
                key->spans.size += sizeof item;
            }
        } else if (field == 1 && kind == TAG_FLOAT && wire_type == WT_FIXED32) {
            if (c.end - c.p < 4) return 0;
            if (key) {
                if (!vec_reserve(&key->floats, 4)) goto nomem;
                uint32_t bits = (uint32_t)c.p[0] | (uint32_t)c.p[1] << 8 | (uint32_t)c.p[2] << 16 |
                                (uint32_t)c.p[3] << 24;
                memcpy(key->floats.data + key->floats.size, &bits, 4);
                key->floats.size += 4;
            }
            c.p += 4;
        } else if (field == 1 && kind == TAG_FLOAT && wire_type == WT_LEN) {
            cursor packed;
            if (!read_len(&c, &packed)) return 0;
            size_t size = (size_t)(packed.end - packed.p);
            if (size % 4) return 0;
            if (key && size) {
                if (!vec_reserve(&key->floats, size)) goto nomem;
                char *out = key->floats.data + key->floats.size;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                memcpy(out, packed.p, size);
#else
                for (size_t i = 0; i < size; i += 4) {
                    const uint8_t *q = packed.p + i;
                    uint32_t bits = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                                    (uint32_t)q[3] << 24;
                    memcpy(out + i, &bits, 4);
                }
#endif
                key->floats.size += size;
            }
        } else if (field == 1 && kind == TAG_INT64 && wire_type == WT_VARINT) {
            uint64_t value;
            if (!read_varint(&c, &value)) return 0;
            if (key) {
                if (!vec_reserve(&key->ints, 8)) goto nomem;
                int64_t signed_value = (int64_t)value;
                memcpy(key->ints.data + key->ints.size, &signed_value, 8);
                key->ints.size += 8;
            }
        } else if (field == 1 && kind == TAG_INT64 && wire_type == WT_LEN) {
            cursor packed;
            if (!read_len(&c, &packed)) return 0;
            /* at most one value per byte */
            if (key && !vec_reserve(&key->ints, 8 * (size_t)(packed.end - packed.p))) goto nomem;
            while (packed.p < packed.end) {
                uint64_t value;
                if (!read_varint(&packed, &value)) return 0;
                if (key) {
                    int64_t signed_value = (int64_t)value;
                    memcpy(key->ints.data + key->ints.size, &signed_value, 8);
                    key->ints.size += 8;
                }
            }
        } else {
            if (!skip_value(&c, wire_type)) return 0;
            if (f) f->list_unknown = 1;
        }
    }
    return 1;
nomem:
    s->out_of_memory = 1;
    return 0;
}

/* A Feature payload (may be one of several merged into the same Feature). */
static int walk_feature(scan *s, cursor c, key_state *key, feature_state *f) {
    uint32_t field;
    int wire_type;
    while (c.p < c.end) {
        if (!read_tag(&c, &field, &wire_type)) return 0;
        if (field >= 1 && field <= 3 && wire_type == WT_LEN) {
            cursor list;
            if (!read_len(&c, &list)) return 0;
            int kind = (int)(field << 3 | WT_LEN);
            if (key && f->kind != kind) {
                /* Another oneof member: protobuf clears the previous one. */
                key->ints.size = f->marks[0];
                key->floats.size = f->marks[1];
                key->spans.size = f->marks[2];
                f->list_unknown = 0;
                f->kind = kind;
            }
            if (!walk_list(s, list, kind, key, f)) return 0;
        } else {
            if (!skip_value(&c, wire_type)) return 0;
            if (f) f->feature_unknown = 1;
        }
    }
    return 1;
}

/* Walks every value (Feature) of a map entry already checked by walk_entry. */
static int walk_entry_values(scan *s, cursor c, key_state *key, feature_state *f) {
    uint32_t field;
    int wire_type;
    while (c.p < c.end) {
        cursor payload;
        if (!read_tag(&c, &field, &wire_type) || !read_len(&c, &payload)) return 0;
        if (field == 2 && !walk_feature(s, payload, key, f)) return 0;
    }
    return 1;
}

/* One map entry: key (1) and value (2), each possibly repeated (last key wins, values merge).
 * Values of a wanted key are decoded after the record (only the last entry counts); all
 * others are validated here. */
static int walk_entry(scan *s, cursor c) {
    const cursor whole = c;
    const uint8_t *name = (const uint8_t *)"";
    Py_ssize_t name_len = 0;
    key_state *key = NULL;
    int deferred = 0; /* a value was left for later because the key (so far) is wanted */
    uint32_t field;
    int wire_type;
    while (c.p < c.end) {
        if (!read_tag(&c, &field, &wire_type)) return 0;
        /* Protobuf keeps an entry with unknown fields out of the map: not modelled. */
        if (wire_type != WT_LEN || field > 2) return 0;
        cursor payload;
        if (!read_len(&c, &payload)) return 0;
        if (field == 1) {
            if (!valid_utf8(payload.p, payload.end)) return 0;
            name = payload.p;
            name_len = payload.end - payload.p;
            key = NULL;
        } else if (key != NULL || (key = find_key(s, name, name_len)) != NULL) {
            deferred = 1;
        } else if (!walk_feature(s, payload, NULL, NULL)) {
            return 0;
        }
    }
    if (key == NULL) key = find_key(s, name, name_len);
    if (key == NULL) {
        return !deferred || walk_entry_values(s, whole, NULL, NULL);
    }
    /* This entry replaces an earlier one of the same key: that one still has to be valid. */
    if (key->entry.p != NULL && !key->entry_walked && !walk_entry_values(s, key->entry, NULL, NULL)) return 0;
    key->entry = whole;
    key->entry_walked = !deferred;
    return 1;
}

static int walk_features(scan *s, cursor c) {
    uint32_t field;
    int wire_type;
    while (c.p < c.end) {
        if (!read_tag(&c, &field, &wire_type)) return 0;
        if (field == 1 && wire_type == WT_LEN) {
            cursor entry;
            if (!read_len(&c, &entry) || !walk_entry(s, entry)) return 0;
        } else if (!skip_value(&c, wire_type)) {
            return 0;
        }
    }
    return 1;
}

static int walk_record(scan *s, const uint8_t *data, Py_ssize_t len, Py_ssize_t index) {
    for (Py_ssize_t k = 0; k < s->nkeys; k++) s->keys[k].entry.p = NULL;
    cursor c = {data, data + len};
    uint32_t field;
    int wire_type;
    while (c.p < c.end) {
        if (!read_tag(&c, &field, &wire_type)) return 0;
        if (field == 1 && wire_type == WT_LEN) {
            cursor features;
            if (!read_len(&c, &features) || !walk_features(s, features)) return 0;
        } else if (!skip_value(&c, wire_type)) {
            return 0;
        }
    }
    for (Py_ssize_t k = 0; k < s->nkeys; k++) {
        key_state *key = &s->keys[k];
        feature_state f = {0, 0, 0, {key->ints.size, key->floats.size, key->spans.size}};
        if (key->entry.p != NULL && !walk_entry_values(s, key->entry, key, &f)) return 0;
        int64_t count = -1;
        switch (f.kind) {
        case TAG_BYTES:
            count = (int64_t)((key->spans.size - f.marks[2]) / sizeof(span));
            key->flags |= FLAG_BYTES;
            break;
        case TAG_FLOAT:
            count = (int64_t)((key->floats.size - f.marks[1]) / 4);
            key->flags |= FLAG_FLOAT;
            break;
        case TAG_INT64:
            count = (int64_t)((key->ints.size - f.marks[0]) / 8);
            key->flags |= FLAG_INT64;
            break;
        default:
            key->flags |= FLAG_NONE;
        }
        if (f.feature_unknown || f.list_unknown) key->flags |= FLAG_UNKNOWN;
        key->tags[index] = f.kind;
        key->counts[index] = count;
    }
    return 1;
}

/* ---- the Python entry point ---- */

typedef struct {
    const uint8_t *data;
    Py_ssize_t len;
} record_view;

static PyObject *build_key_result(key_state *key, PyObject *tags, PyObject *counts) {
    PyObject *ints = NULL, *floats = NULL, *values = NULL;
    ints = PyByteArray_FromStringAndSize(key->ints.data, (Py_ssize_t)key->ints.size);
    floats = PyByteArray_FromStringAndSize(key->floats.data, (Py_ssize_t)key->floats.size);
    Py_ssize_t nvalues = (Py_ssize_t)(key->spans.size / sizeof(span));
    values = PyList_New(nvalues);
    if (ints == NULL || floats == NULL || values == NULL) goto fail;
    const span *spans = (const span *)key->spans.data;
    for (Py_ssize_t i = 0; i < nvalues; i++) {
        PyObject *item = PyBytes_FromStringAndSize((const char *)spans[i].p, spans[i].len);
        if (item == NULL) goto fail;
        PyList_SET_ITEM(values, i, item);
    }
    /* "N" hands over ints, floats and values (also on failure); tags and counts stay owned
     * by the caller's cleanup. */
    return Py_BuildValue("(OONNNi)", tags, counts, ints, floats, values, key->flags);
fail:
    Py_XDECREF(ints);
    Py_XDECREF(floats);
    Py_XDECREF(values);
    return NULL;
}

static PyObject *py_gather_columns(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *records_arg, *keys_arg;
    if (!PyArg_ParseTuple(args, "OO:gather_columns", &records_arg, &keys_arg)) return NULL;

    PyObject *result = NULL;
    /* Own references: another thread may change the caller's lists while the GIL is free. */
    PyObject *records = PySequence_Tuple(records_arg);
    PyObject *keys = records ? PySequence_Tuple(keys_arg) : NULL;
    if (keys == NULL) {
        Py_XDECREF(records);
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(records), nkeys = PyTuple_GET_SIZE(keys);
    record_view *views = PyMem_Calloc((size_t)n + 1, sizeof(record_view));
    Py_buffer *buffers = PyMem_Calloc((size_t)n + 1, sizeof(Py_buffer));
    key_state *states = PyMem_Calloc((size_t)nkeys + 1, sizeof(key_state));
    PyObject **arrays = PyMem_Calloc(2 * (size_t)nkeys + 1, sizeof(PyObject *));
    Py_ssize_t held = 0; /* buffers[0:held] are acquired */
    if (views == NULL || buffers == NULL || states == NULL || arrays == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *name = PyTuple_GET_ITEM(keys, k);
        if (!PyBytes_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "keys must be bytes (UTF-8 feature names)");
            goto done;
        }
        states[k].name = (const uint8_t *)PyBytes_AS_STRING(name);
        states[k].name_len = PyBytes_GET_SIZE(name);
        arrays[2 * k] = PyByteArray_FromStringAndSize(NULL, 8 * n);
        arrays[2 * k + 1] = PyByteArray_FromStringAndSize(NULL, 8 * n);
        if (arrays[2 * k] == NULL || arrays[2 * k + 1] == NULL) goto done;
        states[k].tags = (int64_t *)PyByteArray_AS_STRING(arrays[2 * k]);
        states[k].counts = (int64_t *)PyByteArray_AS_STRING(arrays[2 * k + 1]);
    }
    int64_t total = 0;
    for (Py_ssize_t r = 0; r < n; r++) {
        PyObject *record = PyTuple_GET_ITEM(records, r);
        if (PyBytes_CheckExact(record)) {
            views[r].data = (const uint8_t *)PyBytes_AS_STRING(record);
            views[r].len = PyBytes_GET_SIZE(record);
        } else {
            if (PyObject_GetBuffer(record, &buffers[held], PyBUF_SIMPLE) < 0) {
                /* Not a buffer protobuf could parse either: the pure path reports it. */
                PyErr_Clear();
                result = Py_NewRef(Py_None);
                goto done;
            }
            views[r].data = buffers[held].buf;
            views[r].len = buffers[held].len;
            held++;
        }
        total += views[r].len;
    }

    scan s = {states, nkeys, 0, 0};
    int ok = 1;
    if (total >= NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t r = 0; ok && r < n; r++) ok = walk_record(&s, views[r].data, views[r].len, r);
        Py_END_ALLOW_THREADS
    } else {
        for (Py_ssize_t r = 0; ok && r < n; r++) ok = walk_record(&s, views[r].data, views[r].len, r);
    }
    if (s.out_of_memory) {
        PyErr_NoMemory();
        goto done;
    }
    if (!ok) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    PyObject *columns = PyList_New(nkeys);
    if (columns == NULL) goto done;
    for (Py_ssize_t k = 0; k < nkeys; k++) {
        PyObject *item = build_key_result(&states[k], arrays[2 * k], arrays[2 * k + 1]);
        if (item == NULL) {
            Py_DECREF(columns);
            goto done;
        }
        PyList_SET_ITEM(columns, k, item);
    }
    result = columns;

done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&buffers[i]);
    if (states != NULL) {
        for (Py_ssize_t k = 0; k < nkeys; k++) {
            free(states[k].ints.data);
            free(states[k].floats.data);
            free(states[k].spans.data);
        }
    }
    if (arrays != NULL) {
        for (Py_ssize_t i = 0; i < 2 * nkeys; i++) Py_XDECREF(arrays[i]);
    }
    PyMem_Free(arrays);
    PyMem_Free(states);
    PyMem_Free(buffers);
    PyMem_Free(views);
    Py_DECREF(keys);
    Py_DECREF(records);
    return result;
}

static PyMethodDef methods[] = {
    {"gather_columns", py_gather_columns, METH_VARARGS,
     "gather_columns(records, keys) -> [(tags, counts, ints, floats, values, flags)] per key, or None "
     "when a record needs the pure-Python path (malformed, or a layout the kernel does not model)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "Compiled batch decoding of tf.train.Example records.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "FLAG_NONE", FLAG_NONE) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_BYTES", FLAG_BYTES) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_FLOAT", FLAG_FLOAT) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_INT64", FLAG_INT64) < 0 ||
        PyModule_AddIntConstant(m, "FLAG_UNKNOWN", FLAG_UNKNOWN) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
