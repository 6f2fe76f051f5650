/*
 * Optional compiled kernel of the TFRecord frame parser (see framing.py, the oracle).
 *
 *   crc32c(data, value=0) -> int       CRC32C (Castagnoli), same answers as the crc32c package
 *   scan(buffer, start, end, verify_crc, max_record_bytes)
 *       -> (records, consumed, status, length)
 *
 * scan() parses the complete frames of buffer[start:end] and stops at the first frame it
 * cannot return: incomplete (the caller reads more), or bad. It never builds an exception:
 * framing.py turns (status, consumed, length) into the same errors as its pure-Python loop.
 * All CRCs of a call are checked without the GIL (S3 network threads keep running); only the
 * bytes objects of the good frames are made with it.
 *
 * CRC32C runs on the CPU's instructions where it has them, checked once at import: SSE4.2 on
 * x86-64 (cpuid), the ARMv8 CRC32 extension on aarch64 (HWCAP_CRC32 from getauxval, unless
 * the compiler already targets it); elsewhere slice-by-8 tables (CRC_IMPLEMENTATION says which).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86_CRC 1
#include <nmmintrin.h>
#endif
#if defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
/* The compiler already targets CRC-capable cores: no runtime probing needed. */
#define HAVE_ARM_CRC 1
#include <arm_acle.h>
#elif defined(__aarch64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
/* A stock aarch64 build (plain armv8-a): the CRC32 instructions are optional there, so the
 * hardware path is compiled for them and taken only when the kernel reports them (HWCAP). */
#define HAVE_ARM_CRC 1
#define ARM_CRC_PROBE 1
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7) /* <asm/hwcap.h> on aarch64 */
#endif
#endif

enum { HEADER_BYTES = 12, FOOTER_BYTES = 4, FRAME_OVERHEAD = 16 };
enum { NEED_MORE = 0, LENGTH_CRC = 1, TOO_LARGE = 2, DATA_CRC = 3 };
#define MASK_DELTA 0xA282EAD8u
#define POLY 0x82F63B78u /* CRC32C, reflected */
/* Below this many bytes to check, dropping and retaking the GIL costs more than it frees. */
#define NOGIL_BYTES (64 * 1024)

/* Three interleaved streams hide the 3-cycle latency of the crc32 instruction; their CRCs
 * are joined by "shifting" a register over a block of zeros, a linear map kept as tables. */
#define LONG_BLOCK 8192
#define SHORT_BLOCK 256

static uint32_t table[8][256];    /* slice-by-8 software tables */
static uint32_t shift_long[4][256];  /* register -> register after LONG_BLOCK zero bytes */
static uint32_t shift_short[4][256]; /* register -> register after SHORT_BLOCK zero bytes */

/* Portable little-endian loads: compilers turn these into single loads on LE hosts. */
static inline uint64_t load_le64(const uint8_t *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint32_t load_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* All update functions work on the raw register (no pre/post inversion). */
static uint32_t sw_update(uint32_t r, const uint8_t *p, size_t n) {
    while (n >= 8) {
        uint64_t w = load_le64(p) ^ r;
        r = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
            table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
            table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n--) r = table[0][(r ^ *p++) & 0xff] ^ (r >> 8);
    return r;
}

static inline uint32_t shift(uint32_t t[4][256], uint32_t r) {
    return t[0][r & 0xff] ^ t[1][(r >> 8) & 0xff] ^ t[2][(r >> 16) & 0xff] ^ t[3][r >> 24];
}

static void build_shift_table(uint32_t t[4][256], size_t zeros) {
    static const uint8_t zero_block[LONG_BLOCK];
    uint32_t basis[32];
    for (int i = 0; i < 32; i++) basis[i] = sw_update((uint32_t)1 << i, zero_block, zeros);
    for (int k = 0; k < 4; k++)
        for (int b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int j = 0; j < 8; j++)
                if (b >> j & 1) v ^= basis[8 * k + j];
            t[k][b] = v;
        }
}

static void build_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t r = i;
        for (int j = 0; j < 8; j++) r = (r >> 1) ^ (POLY & (0u - (r & 1)));
        table[0][i] = r;
    }
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++) table[k][i] = (table[k - 1][i] >> 8) ^ table[0][table[k - 1][i] & 0xff];
    build_shift_table(shift_long, LONG_BLOCK);
    build_shift_table(shift_short, SHORT_BLOCK);
}

#if defined(HAVE_X86_CRC) || defined(HAVE_ARM_CRC)
#if defined(HAVE_X86_CRC)
#define HW_TARGET __attribute__((target("sse4.2")))
#define CRC64(r, p) ((uint32_t)_mm_crc32_u64((r), load_le64(p)))
#define CRC8(r, b) _mm_crc32_u8((r), (b))
#elif defined(ARM_CRC_PROBE)
/* Inline assembly rather than <arm_acle.h>, whose intrinsics some compilers declare only
 * when the whole file targets CRC-capable cores. */
#if defined(__clang__)
#define HW_TARGET __attribute__((target("crc")))
#else
#define HW_TARGET __attribute__((target("+crc")))
#endif
HW_TARGET static inline uint32_t arm_crc32cx(uint32_t r, uint64_t v) {
    __asm__(".arch_extension crc\n\tcrc32cx %w0, %w0, %x1" : "+r"(r) : "r"(v));
    return r;
}
HW_TARGET static inline uint32_t arm_crc32cb(uint32_t r, uint8_t b) {
    __asm__(".arch_extension crc\n\tcrc32cb %w0, %w0, %w1" : "+r"(r) : "r"((uint32_t)b));
    return r;
}
#define CRC64(r, p) arm_crc32cx((r), load_le64(p))
#define CRC8(r, b) arm_crc32cb((r), (b))
#else
#define HW_TARGET
#define CRC64(r, p) __crc32cd((r), load_le64(p))
#define CRC8(r, b) __crc32cb((r), (b))
#endif

/* Three streams of `block` bytes each, joined into one register. */
#define HW_TRIPLE(block, table_)                                                         \
    while (n >= 3 * (size_t)(block)) {                                                   \
        uint32_t b = 0, c = 0;                                                           \
        const uint8_t *end = p + (block);                                                \
        do {                                                                             \
            a = CRC64(a, p);                                                             \
            b = CRC64(b, p + (block));                                                   \
            c = CRC64(c, p + 2 * (block));                                               \
            p += 8;                                                                      \
        } while (p < end);                                                               \
        a = shift(table_, a) ^ b;                                                        \
        a = shift(table_, a) ^ c;                                                        \
        p += 2 * (block);                                                                \
        n -= 3 * (size_t)(block);                                                        \
    }

HW_TARGET static uint32_t hw_update(uint32_t a, const uint8_t *p, size_t n) {
    HW_TRIPLE(LONG_BLOCK, shift_long)
    HW_TRIPLE(SHORT_BLOCK, shift_short)
    for (; n >= 8; p += 8, n -= 8) a = CRC64(a, p);
    while (n--) a = CRC8(a, *p++);
    return a;
}
#endif

static uint32_t (*crc_update)(uint32_t, const uint8_t *, size_t) = sw_update;

static inline uint32_t crc32c_of(const uint8_t *p, size_t n) { return ~crc_update(0xFFFFFFFFu, p, n); }

static inline uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + MASK_DELTA; }

static PyObject *crc32c_with(uint32_t (*update)(uint32_t, const uint8_t *, size_t), PyObject *args) {
    Py_buffer view;
    PyObject *value_obj = NULL;
    unsigned long value = 0;
    if (!PyArg_ParseTuple(args, "y*|O!:crc32c", &view, &PyLong_Type, &value_obj)) return NULL;
    if (value_obj != NULL) {
        value = PyLong_AsUnsignedLong(value_obj);
        if ((value == (unsigned long)-1 && PyErr_Occurred()) || value > 0xFFFFFFFFul) {
            PyBuffer_Release(&view);
            PyErr_Clear();
            PyErr_SetString(PyExc_ValueError, "value must be in [0, 2**32)");
            return NULL;
        }
    }
    uint32_t r = ~(uint32_t)value;
    if (view.len >= NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        r = update(r, view.buf, (size_t)view.len);
        Py_END_ALLOW_THREADS
    } else {
        r = update(r, view.buf, (size_t)view.len);
    }
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(~r);
}

static PyObject *py_crc32c(PyObject *self, PyObject *args) {
    (void)self;
    return crc32c_with(crc_update, args);
}

/* The table-driven fallback, reachable on any host so tests can check it. */
static PyObject *py_crc32c_portable(PyObject *self, PyObject *args) {
    (void)self;
    return crc32c_with(sw_update, args);
}

typedef struct {
    size_t offset; /* of the data, in the buffer */
    size_t length;
} span_t;

typedef struct {
    const uint8_t *base;
    size_t pos, end;
    uint64_t cap;
    int verify;
    /* results */
    span_t *spans;
    size_t count, capacity;
    int status;
    uint64_t length;   /* of the frame at pos, when known */
    int length_known;
    int out_of_memory;
} scan_state;

/* Walks frames from s->pos; touches no Python object, so it may run without the GIL. */
static void walk(scan_state *s) {
    const uint8_t *base = s->base;
    for (;;) {
        size_t avail = s->end - s->pos;
        const uint8_t *frame = base + s->pos;
        s->status = NEED_MORE;
        s->length_known = 0;
        if (avail < HEADER_BYTES) return;
        uint64_t length = load_le64(frame);
        if (s->verify && masked(crc32c_of(frame, 8)) != load_le32(frame + 8)) {
            s->status = LENGTH_CRC;
            return;
        }
        s->length = length;
        s->length_known = 1;
        if (length > s->cap) {
            s->status = TOO_LARGE;
            return;
        }
        /* avail >= 12 here; compare in the 64-bit domain so no length can wrap a pointer. */
        if (avail < FRAME_OVERHEAD || length > (uint64_t)(avail - FRAME_OVERHEAD)) return;
        size_t n = (size_t)length;
        if (s->verify && masked(crc32c_of(frame + HEADER_BYTES, n)) != load_le32(frame + HEADER_BYTES + n)) {
            s->status = DATA_CRC;
            return;
        }
        if (s->count == s->capacity) {
            size_t grown = s->capacity ? 2 * s->capacity : 256;
            span_t *spans = PyMem_RawRealloc(s->spans, grown * sizeof(span_t));
            if (spans == NULL) {
                s->out_of_memory = 1;
                return;
            }
            s->spans = spans;
            s->capacity = grown;
        }
        s->spans[s->count].offset = s->pos + HEADER_BYTES;
        s->spans[s->count].length = n;
        s->count++;
        s->pos += FRAME_OVERHEAD + n;
    }
}

static PyObject *py_scan(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t start, end;
    int verify;
    PyObject *cap_obj, *records = NULL, *length = NULL, *result = NULL;
    scan_state s;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nnpO:scan", &view, &start, &end, &verify, &cap_obj)) return NULL;
    memset(&s, 0, sizeof s);
    if (start < 0 || start > end || end > view.len) {
        PyErr_SetString(PyExc_ValueError, "scan needs 0 <= start <= end <= len(buffer)");
        goto done;
    }
    if (!PyLong_Check(cap_obj)) {
        PyErr_SetString(PyExc_TypeError, "max_record_bytes must be an int");
        goto done;
    }
    {
        int overflow;
        long long cap = PyLong_AsLongLongAndOverflow(cap_obj, &overflow);
        if (cap == -1 && PyErr_Occurred()) goto done;
        if (overflow < 0 || (overflow == 0 && cap < 0)) {
            PyErr_SetString(PyExc_ValueError, "max_record_bytes must be >= 0");
            goto done;
        }
        /* A cap past 2**63 caps nothing: such lengths can never be complete in a buffer. */
        s.cap = overflow > 0 ? UINT64_MAX : (uint64_t)cap;
    }
    s.base = view.buf;
    s.pos = (size_t)start;
    s.end = (size_t)end;
    s.verify = verify;
    if (verify && end - start >= NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        walk(&s);
        Py_END_ALLOW_THREADS
    } else {
        walk(&s);
    }
    if (s.out_of_memory) {
        PyErr_NoMemory();
        goto done;
    }
    records = PyList_New((Py_ssize_t)s.count);
    if (records == NULL) goto done;
    for (size_t i = 0; i < s.count; i++) {
        PyObject *record = PyBytes_FromStringAndSize((const char *)s.base + s.spans[i].offset,
                                                     (Py_ssize_t)s.spans[i].length);
        if (record == NULL) goto done;
        PyList_SET_ITEM(records, (Py_ssize_t)i, record);
    }
    length = s.length_known ? PyLong_FromUnsignedLongLong(s.length) : PyLong_FromLong(-1);
    if (length == NULL) goto done;
    result = Py_BuildValue("(OniO)", records, (Py_ssize_t)s.pos, s.status, length);
done:
    Py_XDECREF(records);
    Py_XDECREF(length);
    PyMem_RawFree(s.spans);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef methods[] = {
    {"crc32c", py_crc32c, METH_VARARGS, "crc32c(data, value=0) -> int: CRC32C of data, continuing from value."},
    {"_crc32c_portable", py_crc32c_portable, METH_VARARGS, "crc32c() without hardware instructions (for tests)."},
    {"scan", py_scan, METH_VARARGS,
     "scan(buffer, start, end, verify_crc, max_record_bytes) -> (records, consumed, status, length)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "Compiled TFRecord frame scanning and CRC32C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__native(void) {
    build_tables();
    const char *impl = "software";
#if defined(HAVE_X86_CRC)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("sse4.2")) {
        crc_update = hw_update;
        impl = "sse4.2";
    }
#elif defined(ARM_CRC_PROBE)
    if (getauxval(AT_HWCAP) & HWCAP_CRC32) {
        crc_update = hw_update;
        impl = "armv8-crc";
    }
#elif defined(HAVE_ARM_CRC)
    crc_update = hw_update;
    impl = "armv8-crc";
#endif
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "NEED_MORE", NEED_MORE) < 0 ||
        PyModule_AddIntConstant(m, "LENGTH_CRC", LENGTH_CRC) < 0 ||
        PyModule_AddIntConstant(m, "TOO_LARGE", TOO_LARGE) < 0 ||
        PyModule_AddIntConstant(m, "DATA_CRC", DATA_CRC) < 0 ||
        PyModule_AddStringConstant(m, "CRC_IMPLEMENTATION", impl) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
