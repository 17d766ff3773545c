/* float32 -> float16 with the CPU's own conversion instruction (x86 F16C: vcvtps2ph).
 *
 * numpy converts float32 to float16 in scalar code in its portable wheels (~0.6 GB/s a core
 * here), and numba's kernel costs ~120 MB of memory and ~1 s to load in every process; the
 * instruction converts 8 values per cycle with no library at all (~11 GB/s here).
 *
 * convert(src, dst): src a C-contiguous buffer of float32, dst a writable C-contiguous buffer of
 * the same number of 16-bit values.  Rounding is IEEE round-to-nearest-even, given in the
 * instruction (not taken from MXCSR); values beyond the float16 range become +-inf; a NaN stays a
 * quiet NaN with the top 10 bits of its payload, the bits cryodesk's numba kernel writes.
 * The GIL is released while converting.
 *
 * `available` is 1 when this CPU has F16C (checked at import); convert() refuses otherwise and
 * cryodesk falls back to numba or numpy (cryodesk/kernels/f16c.py).
 *
 * sumsq(src, npix, out): the restack's one-pass check (cryodesk/kernels/sumsq.py): for each of the
 * len(out) images of npix float32 values in src, the sum of their squares, accumulated in float32
 * (32 lanes, AVX), into the float64 buffer out.  It replaces a BLAS dot per image: OpenBLAS runs
 * a dot of this size on its own threads, which then spin for a while on the two cores the gather's
 * workers need.  The GIL is released.  Any summation order is fine for what the sum decides
 * (finite only if every pixel is, > 0 only if a pixel is not 0, and the float16 range with room
 * for n·u of rounding).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CRYODESK_X86 1

__attribute__((target("avx,f16c")))
static void convert_f16c(const float *src, uint16_t *dst, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 a = _mm256_loadu_ps(src + i);
        __m256 b = _mm256_loadu_ps(src + i + 8);
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
        _mm_storeu_si128((__m128i *)(dst + i + 8), _mm256_cvtps_ph(b, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) {
        __m128i h = _mm_cvtps_ph(_mm_set_ss(src[i]), _MM_FROUND_TO_NEAREST_INT);
        dst[i] = (uint16_t)_mm_extract_epi16(h, 0);
    }
}

__attribute__((target("avx")))
static double sumsq_avx(const float *x, Py_ssize_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    Py_ssize_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        __m256 v2 = _mm256_loadu_ps(x + i + 16), v3 = _mm256_loadu_ps(x + i + 24);
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(v0, v0));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(v1, v1));
        a2 = _mm256_add_ps(a2, _mm256_mul_ps(v2, v2));
        a3 = _mm256_add_ps(a3, _mm256_mul_ps(v3, v3));
    }
    __m256 acc = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float lanes[8];
    _mm256_storeu_ps(lanes, acc);
    float s = 0.0f;
    for (int k = 0; k < 8; k++)
        s += lanes[k];
    for (; i < n; i++)
        s += x[i] * x[i];
    return (double)s;
}

static int cpu_has_f16c(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
}
#else
static int cpu_has_f16c(void) { return 0; }
#endif

static double sumsq_plain(const float *x, Py_ssize_t n)
{
    float s = 0.0f;
    for (Py_ssize_t i = 0; i < n; i++)
        s += x[i] * x[i];
    return (double)s;
}

static int have_f16c = 0;
static int have_avx = 0;

static PyObject *convert(PyObject *self, PyObject *args)
{
    Py_buffer src, dst;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*w*:convert", &src, &dst))
        return NULL;
    PyObject *result = NULL;
    if (!have_f16c) {
        PyErr_SetString(PyExc_RuntimeError, "this CPU has no F16C conversion instruction");
    } else if (src.len % 4 != 0 || dst.len % 2 != 0 || src.len / 4 != dst.len / 2) {
        PyErr_Format(PyExc_ValueError,
                     "convert needs n float32 values and room for n float16 values "
                     "(got %zd and %zd bytes)", src.len, dst.len);
    } else {
#ifdef CRYODESK_X86
        Py_ssize_t n = src.len / 4;
        const float *s = (const float *)src.buf;
        uint16_t *d = (uint16_t *)dst.buf;
        Py_BEGIN_ALLOW_THREADS
        convert_f16c(s, d, n);
        Py_END_ALLOW_THREADS
#endif
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&dst);
    return result;
}

static PyObject *sumsq(PyObject *self, PyObject *args)
{
    Py_buffer src, out;
    Py_ssize_t npix;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*nw*:sumsq", &src, &npix, &out))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t count = out.len / 8;
    /* count images of npix values: by division, as count * npix can wrap around (and then read past src) */
    if (npix < 1 || src.len % 4 != 0 || out.len % 8 != 0 || (src.len / 4) % npix != 0
            || (src.len / 4) / npix != count) {
        PyErr_Format(PyExc_ValueError,
                     "sumsq needs n images of npix float32 values and room for n float64 sums "
                     "(got %zd and %zd bytes, npix %zd)", src.len, out.len, npix);
    } else {
        const float *x = (const float *)src.buf;
        double *o = (double *)out.buf;
        int fast = have_avx;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t k = 0; k < count; k++) {
#ifdef CRYODESK_X86
            o[k] = fast ? sumsq_avx(x + k * npix, npix) : sumsq_plain(x + k * npix, npix);
#else
            o[k] = sumsq_plain(x + k * npix, npix);
#endif
        }
        Py_END_ALLOW_THREADS
        result = Py_NewRef(Py_None);
    }
    PyBuffer_Release(&src);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"convert", convert, METH_VARARGS,
     "convert(src, dst): float32 values of src as IEEE float16 (round to nearest even) into dst."},
    {"sumsq", sumsq, METH_VARARGS,
     "sumsq(src, npix, out): per image of npix float32 values in src, the sum of squares (float32 "
     "accumulation) into the float64 buffer out."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_f16c",
    "float32 -> float16 with the CPU's F16C instruction (see cryodesk/kernels/f16c.py).",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__f16c(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    have_f16c = cpu_has_f16c();
#ifdef CRYODESK_X86
    __builtin_cpu_init();
    have_avx = __builtin_cpu_supports("avx");
#endif
    if (PyModule_AddIntConstant(m, "available", have_f16c) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
