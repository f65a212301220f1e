/* _kernels: derivative rules that NumPy computes in several passes over memory, or with a
   branch per element, in one pass without branches.

   Each function mirrors a NumPy expression in _vjps.py, which stays the reference and the
   fallback: the rule calls the kernel only on what it handles (checked there, and again here)
   and evaluates the expression otherwise. The results are the same bits, because the kernel
   performs the same floating point operations on each element (or none: a selection). A
   kernel that computes and meets a floating point exception (a NaN, an underflow) returns
   False, and the rule evaluates the expression instead, so that NumPy warns or raises as its
   error state says. Arrays arrive through the buffer protocol, so building this module needs
   no NumPy headers. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <fenv.h>

#ifdef _MSC_VER  /* MSVC's C spells C99's restrict its own way */
#define restrict __restrict
#endif

/* An operand: a C-contiguous buffer, or a Python number (`view.buf` is then NULL). */
typedef struct {
    Py_buffer view;
    double number;
} Operand;

static void release(Operand *ops, int k) {
    for (int i = 0; i < k; i++)
        if (ops[i].view.buf != NULL) PyBuffer_Release(&ops[i].view);
}

/* Read `obj` into `op`: a number if allowed, else a buffer of `n` items of `format`. */
static int take(PyObject *obj, Operand *op, int flags, const char *format, Py_ssize_t n) {
    op->view.buf = NULL;
    op->number = 0.0;
    if (format != NULL && (PyFloat_CheckExact(obj) || PyLong_CheckExact(obj))) {
        op->number = PyFloat_AsDouble(obj);
        return op->number == -1.0 && PyErr_Occurred() ? -1 : 0;
    }
    if (PyObject_GetBuffer(obj, &op->view, flags | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        op->view.buf = NULL;
        return -1;
    }
    const char *f = op->view.format;
    if ((format == NULL && strcmp(f, "d") != 0 && strcmp(f, "f") != 0)
        || (format != NULL && (strcmp(f, format) != 0 || op->view.len / op->view.itemsize != n))) {
        PyErr_SetString(PyExc_ValueError, "float64 or float32 arrays of one dtype and one size expected "
                                          "(bool for a condition; Python numbers where a kernel takes them)");
        return -1;
    }
    return 0;
}

/* Read the output `obj[0]` (a writable float64 or float32 buffer), then `obj[1]` ... `obj[k-1]`
   as `formats` says: "=" the output's format, "?" bools. On a failure all is released. */
static int take_all(PyObject **obj, Operand *ops, int k, const char *const *formats) {
    if (take(obj[0], &ops[0], PyBUF_WRITABLE, NULL, 0) < 0) {
        release(ops, 1);
        return -1;
    }
    Py_ssize_t n = ops[0].view.len / ops[0].view.itemsize;
    for (int i = 1; i < k; i++) {
        const char *format = formats[i][0] == '=' ? ops[0].view.format : formats[i];
        if (take(obj[i], &ops[i], PyBUF_SIMPLE, format, n) < 0) {
            release(ops, i + 1);
            return -1;
        }
    }
    return 0;
}

/* out = g * (1 where u > v, 1/2 where u == v, 0 elsewhere): the cotangent of maximum's first
   argument (u = x, v = y), as `g * _tie(x, y)` computes it. Written for the compiler to
   vectorize: no branches (the signs of a layer's inputs are a coin toss for a branch
   predictor), and a loop of its own where u or v is a number. */
#define TIE_TIMES_AT(T, a, b)                                                                 \
    {                                                                                         \
        T win = (a) > (b) ? (T)1 : (T)0;                                                      \
        T tie = (a) == (b) ? (T)0.5 : (T)0;                                                   \
        o[i] = g[i] * (win + tie);                                                            \
    }
#define TIE_TIMES(T)                                                                          \
    static void tie_times_##T(T *restrict o, const T *restrict g, const T *u, const T *v,     \
                              T us, T vs, Py_ssize_t n) {                                     \
        if (v == NULL)                                                                        \
            for (Py_ssize_t i = 0; i < n; i++) TIE_TIMES_AT(T, u[i], vs)                      \
        else if (u == NULL)                                                                   \
            for (Py_ssize_t i = 0; i < n; i++) TIE_TIMES_AT(T, us, v[i])                      \
        else                                                                                  \
            for (Py_ssize_t i = 0; i < n; i++) TIE_TIMES_AT(T, u[i], v[i])                    \
    }
TIE_TIMES(double)
TIE_TIMES(float)

static PyObject *tie_times(PyObject *module, PyObject *args) {
    PyObject *obj[4];
    if (!PyArg_ParseTuple(args, "OOOO:tie_times", &obj[0], &obj[1], &obj[2], &obj[3])) return NULL;
    Operand ops[4];
    static const char *const formats[] = {NULL, "=", "=", "="};
    if (take_all(obj, ops, 4, formats) < 0) return NULL;
    const char *format = ops[0].view.format;
    Py_ssize_t n = ops[0].view.len / ops[0].view.itemsize;
    if (ops[1].view.buf == NULL || (ops[2].view.buf == NULL && ops[3].view.buf == NULL)
        || ops[0].view.buf == ops[1].view.buf) {
        PyErr_SetString(PyExc_ValueError, "tie_times: g and u or v must be arrays, out a new one");
        release(ops, 4);
        return NULL;
    }
    int raised;
    Py_BEGIN_ALLOW_THREADS
    feclearexcept(FE_ALL_EXCEPT);
    if (format[0] == 'd')
        tie_times_double(ops[0].view.buf, ops[1].view.buf, ops[2].view.buf, ops[3].view.buf,
                         ops[2].number, ops[3].number, n);
    else
        tie_times_float(ops[0].view.buf, ops[1].view.buf, ops[2].view.buf, ops[3].view.buf,
                        (float)ops[2].number, (float)ops[3].number, n);
    raised = fetestexcept(FE_INVALID | FE_DIVBYZERO | FE_OVERFLOW | FE_UNDERFLOW);
    Py_END_ALLOW_THREADS
    release(ops, 4);
    return PyBool_FromLong(!raised);
}

/* out = where(c, g, 0) (keep) or where(c, 0, g): the cotangents of where's x and y. NumPy's
   where branches on every element, which a mask of a layer's signs makes a coin toss for the
   branch predictor (ten times the time of a multiply); this selects without branches. */
#define SELECT(T)                                                                             \
    static void select_##T(T *restrict o, const unsigned char *restrict c, const T *restrict g, \
                           int keep, Py_ssize_t n) {                                          \
        if (keep)                                                                             \
            for (Py_ssize_t i = 0; i < n; i++) { T v = g[i]; o[i] = c[i] ? v : (T)0; }        \
        else                                                                                  \
            for (Py_ssize_t i = 0; i < n; i++) { T v = g[i]; o[i] = c[i] ? (T)0 : v; }        \
    }
SELECT(double)
SELECT(float)

static PyObject *select_where(PyObject *module, PyObject *args) {
    PyObject *obj[3];
    int keep;
    if (!PyArg_ParseTuple(args, "OOOp:select", &obj[0], &obj[1], &obj[2], &keep)) return NULL;
    Operand ops[3];
    static const char *const formats[] = {NULL, "?", "="};
    if (take_all(obj, ops, 3, formats) < 0) return NULL;
    const char *format = ops[0].view.format;
    Py_ssize_t n = ops[0].view.len / ops[0].view.itemsize;
    if (ops[1].view.buf == NULL || ops[2].view.buf == NULL || ops[0].view.buf == ops[2].view.buf) {
        PyErr_SetString(PyExc_ValueError, "select: c and g must be arrays, out a new one");
        release(ops, 3);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    if (format[0] == 'd')
        select_double(ops[0].view.buf, ops[1].view.buf, ops[2].view.buf, keep, n);
    else
        select_float(ops[0].view.buf, ops[1].view.buf, ops[2].view.buf, keep, n);
    Py_END_ALLOW_THREADS
    release(ops, 3);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"tie_times", tie_times, METH_VARARGS,
     "tie_times(out, g, u, v): out = g * (1 where u > v, 1/2 where u == v, 0 elsewhere); "
     "False if a floating point exception occurred. See wengert.numpy._vjps._tie_times."},
    {"select", select_where, METH_VARARGS,
     "select(out, c, g, keep): out = where(c, g, 0) if keep else where(c, 0, g); c a bool array. "
     "See wengert.numpy._vjps._select."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
