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

static int cpu_has_f16c(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
}
#else
static int cpu_has_f16c(void) { return 0; }
#endif

static int have_f16c = 0;

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

static PyMethodDef methods[] = {
    {"convert", convert, METH_VARARGS,
     "convert(src, dst): float32 values of src as IEEE float16 (round to nearest even) into dst."},
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
    if (PyModule_AddIntConstant(m, "available", have_f16c) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
