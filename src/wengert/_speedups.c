/* _speedups: the hot paths of wengert._core, compiled.

   wengert/_core.py is the reference: it defines in Python exactly what this module does,
   namely the memory layout of a Box, the recording wrappers `unary` and `binary`, the
   reverse sweep `_sweep`, and the append of a trace that releases values (`releasing`).
   When this extension is built, _core uses it instead (setting WENGERT_PURE_PYTHON=1
   selects the Python engine), and the test suite runs against both.
   Each function below mirrors the Python function of the same name; change both together.

   Nothing here knows about NumPy or about derivatives: values are computed by calling the
   `fun` a wrapper was made with, and cotangents by calling the rules a Primitive carries. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* ------------------------------------------------------------------------- Box layout */

/* Boxes are not tracked by the cycle collector: they form a DAG (a box refers to the boxes
   of its arguments, never the reverse), and the one cycle, box -> trace -> list -> box, is
   broken by Trace.close() when recording ends. Tracking them made every full collection
   walk the whole tape, which made long recordings quadratic. */
typedef struct {
    PyObject_HEAD
    PyObject *value, *trace, *prim, *args, *kwargs, *parents, *adj;
} BoxObject;

static void box_dealloc(BoxObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    Py_CLEAR(self->value); Py_CLEAR(self->trace); Py_CLEAR(self->prim); Py_CLEAR(self->args);
    Py_CLEAR(self->kwargs); Py_CLEAR(self->parents); Py_CLEAR(self->adj);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);  /* instances of a heap type hold a reference to it */
}

/* Box(value, trace, prim, args, kwargs, parents), as _core.Box.__init__. */
static PyObject *box_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *names[] = {"value", "trace", "prim", "args", "kwargs", "parents", NULL};
    PyObject *f[6];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO:Box", names,
                                     &f[0], &f[1], &f[2], &f[3], &f[4], &f[5]))
        return NULL;
    BoxObject *self = (BoxObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->value = Py_NewRef(f[0]); self->trace = Py_NewRef(f[1]); self->prim = Py_NewRef(f[2]);
    self->args = Py_NewRef(f[3]); self->kwargs = Py_NewRef(f[4]); self->parents = Py_NewRef(f[5]);
    self->adj = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static PyMemberDef box_members[] = {
    {"value", T_OBJECT_EX, offsetof(BoxObject, value), 0, NULL},
    {"trace", T_OBJECT_EX, offsetof(BoxObject, trace), 0, NULL},
    {"prim", T_OBJECT_EX, offsetof(BoxObject, prim), 0, NULL},
    {"args", T_OBJECT_EX, offsetof(BoxObject, args), 0, NULL},
    {"kwargs", T_OBJECT_EX, offsetof(BoxObject, kwargs), 0, NULL},
    {"parents", T_OBJECT_EX, offsetof(BoxObject, parents), 0, NULL},
    {"adj", T_OBJECT_EX, offsetof(BoxObject, adj), 0, NULL},
    {NULL},
};

/* A heap type, so that Python can give it the methods of an ndarray (_core.Box's role). */
static PyType_Slot box_slots[] = {
    {Py_tp_new, box_new},
    {Py_tp_dealloc, box_dealloc},
    {Py_tp_members, box_members},
    {0, NULL},
};

static PyType_Spec box_spec = {
    "wengert.Box", sizeof(BoxObject), 0, Py_TPFLAGS_DEFAULT, box_slots,
};

/* The Box type (made at import), and, set by configure(): _core.apply and the shared empty
   keyword dict. `pausing` mirrors _core._pausing (set by no_grad). */
static PyTypeObject *Box = NULL;
static PyObject *apply_fn = NULL, *no_kwargs = NULL, *empty_tuple = NULL;
/* _core._ieee: reruns a rule that divided a Python float by zero on NumPy floats. */
static PyObject *retry_fn = NULL;
/* _core.Joint, and _core._sweep_node, which sweeps the entries whose rules are one Joint */
static PyObject *joint_type = NULL, *sweep_joint_fn = NULL;
/* _core.Pending: a cotangent read with its dense() method, added to a sum with added_to() */
static PyTypeObject *pending_type = NULL;
static PyObject *str_dense = NULL, *str_added_to = NULL;
/* _core's named rule helpers, applied here without a call: same, negated, times_second,
   times_first, times_ans. */
static PyObject *rule_same = NULL, *rule_negated = NULL, *rule_times_second = NULL,
                *rule_times_first = NULL, *rule_times_ans = NULL;
static PyObject *str_append = NULL, *str_fit = NULL, *str_vjps = NULL, *str_name = NULL;
static PyObject *str_add_note = NULL;
static PyObject *int0 = NULL, *int1 = NULL;
static long pausing = 0;
/* The types of constants whose values are watched for mutation (set by watch()). A binary
   operation with such a constant takes the Python path (apply), which watches it. */
#define MAX_WATCHED 8
static PyObject *watched_types = NULL; /* the tuple given, kept alive */
static Py_ssize_t n_watched = 0;
static PyTypeObject *watched[MAX_WATCHED];
static int is_watched(PyObject *o) {
    for (Py_ssize_t i = 0; i < n_watched; i++)
        if (PyObject_TypeCheck(o, watched[i])) return 1;
    return 0;
}
#define WATCHED(o) (n_watched && is_watched(o))
/* A list or tuple: the fallback makes it an array, which the rules expect (and finds the
   traced values it may hold). */
#define SEQUENCE(o) (PyList_CheckExact(o) || PyTuple_CheckExact(o))

#define IS_BOX(o) (Py_TYPE(o) == Box)

/* Box(ans, trace, prim, args, NO_KWARGS, parents), appended to trace's list. Steals ans,
   args and parents (any may be NULL after a failed allocation). */
static PyObject *record(PyObject *trace, PyObject *prim, PyObject *ans, PyObject *args,
                        PyObject *parents) {
    if (ans == NULL || args == NULL || parents == NULL) {
        Py_XDECREF(ans); Py_XDECREF(args); Py_XDECREF(parents);
        return NULL;
    }
    BoxObject *box = (BoxObject *)Box->tp_alloc(Box, 0);
    if (box == NULL) {
        Py_DECREF(ans); Py_DECREF(args); Py_DECREF(parents);
        return NULL;
    }
    box->value = ans;
    Py_INCREF(trace); box->trace = trace;
    Py_INCREF(prim); box->prim = prim;
    box->args = args;
    Py_INCREF(no_kwargs); box->kwargs = no_kwargs;
    box->parents = parents;
    Py_INCREF(Py_None); box->adj = Py_None;
    PyObject *r = PyObject_CallMethodOneArg(trace, str_append, (PyObject *)box);
    if (r == NULL) {
        Py_DECREF(box);
        return NULL;
    }
    Py_DECREF(r);
    return (PyObject *)box;
}

/* (argnum, box): one entry of a box's parents */
static PyObject *edge(PyObject *k, PyObject *box) {
    return PyTuple_Pack(2, k, box);
}

static PyObject *call_apply(PyObject *prim, PyObject *x, PyObject *y) {
    PyObject *args = y ? PyTuple_Pack(2, x, y) : PyTuple_Pack(1, x);
    if (args == NULL) return NULL;
    PyObject *r = PyObject_CallFunctionObjArgs(apply_fn, prim, args, no_kwargs, NULL);
    Py_DECREF(args);
    return r;
}

/* ------------------------------------------------------------------------- recorders */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *prim, *fun, *fallback, *scalar;
    PyObject *dict;  /* __name__, __doc__, primitive, ufunc attributes ... set from Python */
} RecorderObject;

static PyObject *fall_back(RecorderObject *self, PyObject *const *args, size_t nargsf,
                           PyObject *kwnames) {
    if (self->fallback == Py_None) {
        PyErr_SetString(PyExc_TypeError, "this operator takes no extra arguments");
        return NULL;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

/* Mirrors _core.unary's `call`. */
static PyObject *unary_call(RecorderObject *self, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0))
        return fall_back(self, args, nargsf, kwnames);
    PyObject *x = args[0];
    if (!IS_BOX(x))
        return SEQUENCE(x) && self->fallback != Py_None ? fall_back(self, args, nargsf, kwnames)
                                                        : PyObject_CallOneArg(self->fun, x);
    BoxObject *bx = (BoxObject *)x;
    PyObject *v = bx->value;
    if (IS_BOX(v) || pausing)
        return call_apply(self->prim, x, NULL);
    PyObject *ans = PyObject_CallOneArg(self->fun, v);
    if (ans == NULL) return NULL;
    PyObject *e = edge(int0, x);
    PyObject *parents = e ? PyTuple_Pack(1, e) : NULL;
    Py_XDECREF(e);
    return record(bx->trace, self->prim, ans, PyTuple_Pack(1, v), parents);
}

/* Mirrors _core.binary's `call`. */
static PyObject *binary_call(RecorderObject *self, PyObject *const *args, size_t nargsf,
                             PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n != 2 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) > 0))
        return fall_back(self, args, nargsf, kwnames);
    PyObject *x = args[0], *y = args[1], *xv, *yv, *trace, *prim, *parents;
    if (IS_BOX(x)) {
        BoxObject *bx = (BoxObject *)x;
        trace = bx->trace;
        xv = bx->value;
        if (IS_BOX(y)) {
            yv = ((BoxObject *)y)->value;
            if (((BoxObject *)y)->trace != trace || IS_BOX(xv) || IS_BOX(yv) || pausing)
                return call_apply(self->prim, x, y);
            prim = (PyFloat_Check(xv) && PyFloat_Check(yv)) ? self->scalar : self->prim;
            PyObject *e0 = edge(int0, x), *e1 = edge(int1, y);
            parents = (e0 && e1) ? PyTuple_Pack(2, e0, e1) : NULL;
            Py_XDECREF(e0); Py_XDECREF(e1);
        }
        else {
            if (SEQUENCE(y))
                return fall_back(self, args, nargsf, kwnames);
            if (IS_BOX(xv) || pausing || WATCHED(y))
                return call_apply(self->prim, x, y);
            yv = y;
            prim = (PyFloat_CheckExact(y) || PyLong_CheckExact(y)) ? self->scalar : self->prim;
            PyObject *e = edge(int0, x);
            parents = e ? PyTuple_Pack(1, e) : NULL;
            Py_XDECREF(e);
        }
    }
    else if (IS_BOX(y)) {
        BoxObject *by = (BoxObject *)y;
        yv = by->value;
        if (SEQUENCE(x))
            return fall_back(self, args, nargsf, kwnames);
        if (IS_BOX(yv) || pausing || WATCHED(x))
            return call_apply(self->prim, x, y);
        trace = by->trace;
        xv = x;
        prim = (PyFloat_CheckExact(x) || PyLong_CheckExact(x)) ? self->scalar : self->prim;
        PyObject *e = edge(int1, y);
        parents = e ? PyTuple_Pack(1, e) : NULL;
        Py_XDECREF(e);
    }
    else if (SEQUENCE(x) || SEQUENCE(y)) {  /* they may hold traced values */
        return fall_back(self, args, nargsf, kwnames);
    }
    else {
        PyObject *pair[2] = {x, y};
        return PyObject_Vectorcall(self->fun, pair, 2, NULL);
    }
    if (parents == NULL) return NULL;
    PyObject *pair[2] = {xv, yv};
    PyObject *ans = PyObject_Vectorcall(self->fun, pair, 2, NULL);
    if (ans == NULL) {
        Py_DECREF(parents);
        return NULL;
    }
    return record(trace, prim, ans, PyTuple_Pack(2, xv, yv), parents);
}

static int recorder_traverse(RecorderObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->prim); Py_VISIT(self->fun); Py_VISIT(self->fallback);
    Py_VISIT(self->scalar); Py_VISIT(self->dict);
    return 0;
}

static int recorder_clear(RecorderObject *self) {
    Py_CLEAR(self->prim); Py_CLEAR(self->fun); Py_CLEAR(self->fallback);
    Py_CLEAR(self->scalar); Py_CLEAR(self->dict);
    return 0;
}

static void recorder_dealloc(RecorderObject *self) {
    PyObject_GC_UnTrack(self);
    recorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Recorders are used as methods (Box.__mul__ = binary(...)), so they bind like functions. */
static PyObject *recorder_get(PyObject *self, PyObject *obj, PyObject *type) {
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyGetSetDef recorder_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyTypeObject RecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wengert._speedups.Recorder",
    .tp_doc = "A recording wrapper of a primitive (see wengert._core.unary and binary).",
    .tp_basicsize = sizeof(RecorderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL
                | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(RecorderObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = recorder_get,
    .tp_dictoffset = offsetof(RecorderObject, dict),
    .tp_getset = recorder_getset,
    .tp_traverse = (traverseproc)recorder_traverse,
    .tp_clear = (inquiry)recorder_clear,
    .tp_dealloc = (destructor)recorder_dealloc,
};

static PyObject *make_recorder(PyObject *args, int arity) {
    PyObject *prim, *fun, *fallback;
    if (!PyArg_ParseTuple(args, "OOO", &prim, &fun, &fallback))
        return NULL;
    PyObject *scalar = NULL;
    if (arity == 2) {
        scalar = PyObject_GetAttrString(prim, "scalar");
        if (scalar == NULL) return NULL;
        if (scalar == Py_None) { Py_DECREF(scalar); Py_INCREF(prim); scalar = prim; }
    }
    RecorderObject *self = PyObject_GC_New(RecorderObject, &RecorderType);
    if (self == NULL) {
        Py_XDECREF(scalar);
        return NULL;
    }
    self->vectorcall = (vectorcallfunc)(arity == 1 ? unary_call : binary_call);
    Py_INCREF(prim); self->prim = prim;
    Py_INCREF(fun); self->fun = fun;
    Py_INCREF(fallback); self->fallback = fallback;
    self->scalar = scalar;
    self->dict = NULL;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyObject *unary(PyObject *module, PyObject *args) { return make_recorder(args, 1); }
static PyObject *binary(PyObject *module, PyObject *args) { return make_recorder(args, 2); }

/* NumPy's protocols on a box (Box.__array_ufunc__ and __array_function__): the wrapper that the
   NumPy layer's table (held as `prim`) has for the ufunc or function is called at once; any
   other call (a ufunc method, out=, a callable without a wrapper) goes to the Python method
   (`fallback`), which the NumPy layer writes out. NumPy calls them unbound, self first. */
static PyObject *ufunc_protocol(RecorderObject *self, PyObject *const *args, size_t nargsf,
                                PyObject *kwnames) {
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (n >= 3 && (kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0) && PyUnicode_Check(args[2])
        && PyUnicode_CompareWithASCIIString(args[2], "__call__") == 0) {
        PyObject *wrapper = PyDict_GetItemWithError(self->prim, args[1]);
        if (wrapper != NULL) return PyObject_Vectorcall(wrapper, args + 3, n - 3, NULL);
        if (PyErr_Occurred()) return NULL;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *function_protocol(RecorderObject *self, PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) == 5 && kwnames == NULL && PyTuple_Check(args[3]) && PyDict_Check(args[4])) {
        PyObject *wrapper = PyDict_GetItemWithError(self->prim, args[1]);
        if (wrapper != NULL) return PyObject_Call(wrapper, args[3], PyDict_GET_SIZE(args[4]) ? args[4] : NULL);
        if (PyErr_Occurred()) return NULL;
    }
    return PyObject_Vectorcall(self->fallback, args, nargsf, kwnames);
}

static PyObject *protocols(PyObject *module, PyObject *args) {
    PyObject *table, *ufunc_fallback, *function_fallback;
    if (!PyArg_ParseTuple(args, "O!OO", &PyDict_Type, &table, &ufunc_fallback, &function_fallback))
        return NULL;
    PyObject *fallbacks[2] = {ufunc_fallback, function_fallback};
    vectorcallfunc calls[2] = {(vectorcallfunc)ufunc_protocol, (vectorcallfunc)function_protocol};
    PyObject *pair = PyTuple_New(2);
    for (int i = 0; pair != NULL && i < 2; i++) {
        RecorderObject *hook = PyObject_GC_New(RecorderObject, &RecorderType);
        if (hook == NULL) { Py_CLEAR(pair); break; }
        hook->vectorcall = calls[i];
        hook->prim = Py_NewRef(table);
        hook->fun = Py_NewRef(Py_None);
        hook->fallback = Py_NewRef(fallbacks[i]);
        hook->scalar = NULL;
        hook->dict = NULL;
        PyObject_GC_Track(hook);
        PyTuple_SET_ITEM(pair, i, (PyObject *)hook);
    }
    return pair;
}

/* ------------------------------------------------------------------------- the sweep */

/* Mirrors _core._sweep. On an error, notes which primitive's rule raised it. */
static void note_failure(PyObject *prim) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) PyException_SetTraceback(value, tb);
    PyObject *name = PyObject_GetAttr(prim, str_name);
    if (name != NULL && PyObject_HasAttr(value, str_add_note)) {
        PyObject *msg = PyUnicode_FromFormat(
            "(raised by the derivative rule of '%S' during the reverse sweep)", name);
        PyObject *r = msg ? PyObject_CallMethodOneArg(value, str_add_note, msg) : NULL;
        Py_XDECREF(msg);
        Py_XDECREF(r);
    }
    Py_XDECREF(name);
    PyErr_Clear();
    PyErr_Restore(type, value, tb);
}

static int sweep_node(BoxObject *node) {
    if (node->adj != NULL && PyObject_TypeCheck(node->adj, pending_type)) {
        PyObject *dense = PyObject_CallMethodNoArgs(node->adj, str_dense);
        if (dense == NULL) return -1;
        Py_SETREF(node->adj, dense);
    }
    PyObject *g = node->adj;
    PyObject *parents = node->parents;
    if (g == NULL || g == Py_None || parents == NULL || !PyTuple_Check(parents)
        || PyTuple_GET_SIZE(parents) == 0)
        return 0;  /* nothing flows back, or an input: its cotangent is the result */
    PyObject *fit = PyObject_GetAttr(node->prim, str_fit);
    PyObject *vjps = fit ? PyObject_GetAttr(node->prim, str_vjps) : NULL;
    if (vjps == NULL) { Py_XDECREF(fit); return -1; }
    if ((PyObject *)Py_TYPE(vjps) == joint_type) {  /* rare and costly anyway: the Python loop */
        Py_DECREF(vjps);
        Py_DECREF(fit);
        PyObject *r = PyObject_CallFunctionObjArgs(sweep_joint_fn, (PyObject *)node, Py_None, NULL);
        Py_XDECREF(r);
        return r == NULL ? -1 : 0;
    }
    node->adj = Py_None;  /* we now own g's reference */
    Py_INCREF(Py_None);
    PyObject *args = node->args, *kwargs = node->kwargs;
    Py_ssize_t na = PyTuple_GET_SIZE(args);
    PyObject *small[8], **stack = na + 2 <= 8 ? small : PyMem_Malloc((na + 2) * sizeof(PyObject *));
    if (stack == NULL) { Py_DECREF(g); Py_DECREF(fit); Py_DECREF(vjps); PyErr_NoMemory(); return -1; }
    stack[0] = g;
    stack[1] = node->value;
    for (Py_ssize_t k = 0; k < na; k++) stack[2 + k] = PyTuple_GET_ITEM(args, k);
    if (kwargs != NULL && PyDict_Check(kwargs) && PyDict_GET_SIZE(kwargs) == 0) kwargs = NULL;
    int status = 0;
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(parents); j++) {
        PyObject *e = PyTuple_GET_ITEM(parents, j);
        BoxObject *p = (BoxObject *)PyTuple_GET_ITEM(e, 1);
        PyObject *rule = PyObject_GetItem(vjps, PyTuple_GET_ITEM(e, 0));
        if (rule == NULL) { status = -1; break; }
        PyObject *c;
        if (rule == rule_same) c = Py_NewRef(g);
        else if (rule == rule_negated) c = PyNumber_Negative(g);
        else if (rule == rule_times_ans) c = PyNumber_Multiply(g, node->value);
        else if (rule == rule_times_second && na >= 2) c = PyNumber_Multiply(g, stack[3]);
        else if (rule == rule_times_first && na >= 2) c = PyNumber_Multiply(g, stack[2]);
        else {
            c = PyObject_VectorcallDict(rule, stack, 2 + na, kwargs);
            if (c == NULL && retry_fn != NULL && PyErr_ExceptionMatches(PyExc_ZeroDivisionError)) {
                PyErr_Clear();
                c = PyObject_CallFunctionObjArgs(retry_fn, rule, g, node->value, args,
                                                 kwargs ? kwargs : no_kwargs, NULL);
            }
        }
        Py_DECREF(rule);
        if (c != NULL && fit != Py_None) {
            PyObject *fitted = PyObject_CallFunctionObjArgs(fit, c, p->value, NULL);
            Py_DECREF(c);
            c = fitted;
        }
        if (c == NULL) { status = -1; break; }
        PyObject *q = p->adj;
        if (q == NULL || q == Py_None) {
            p->adj = c;
            Py_XDECREF(q);
        }
        else {
            PyObject *sum = PyObject_TypeCheck(c, pending_type) ? PyObject_CallMethodOneArg(c, str_added_to, q)
                                                                : PyNumber_Add(q, c);
            Py_DECREF(c);
            if (sum == NULL) { status = -1; break; }
            p->adj = sum;
            Py_DECREF(q);
        }
    }
    if (stack != small) PyMem_Free(stack);
    Py_DECREF(vjps);
    Py_DECREF(fit);
    Py_DECREF(g);
    return status;
}

/* Mirrors _core._release: drop what a swept entry saved (its inputs always, its value when
   nothing but the list and the sweep refers to the box), so that the sweep's own arrays can
   reuse that memory. Inputs keep everything: their cotangents are the result. */
static void release(BoxObject *node) {
    if (node->prim == Py_None) return;
    Py_SETREF(node->args, Py_NewRef(empty_tuple));
    Py_SETREF(node->parents, Py_NewRef(empty_tuple));
    Py_SETREF(node->kwargs, Py_NewRef(no_kwargs));
    if (Py_REFCNT(node) <= 2) Py_SETREF(node->value, Py_NewRef(Py_None));
}

static PyObject *sweep(PyObject *module, PyObject *args) {
    PyObject *nodes;
    int free_as_we_go;
    if (!PyArg_ParseTuple(args, "O!p:sweep", &PyList_Type, &nodes, &free_as_we_go)) return NULL;
    for (Py_ssize_t i = PyList_GET_SIZE(nodes) - 1; i >= 0; i--) {
        if (i >= PyList_GET_SIZE(nodes)) continue;
        PyObject *node = PyList_GET_ITEM(nodes, i);
        if (!IS_BOX(node)) continue;
        Py_INCREF(node);
        int status = sweep_node((BoxObject *)node);
        if (status < 0) note_failure(((BoxObject *)node)->prim);
        else if (free_as_we_go) release((BoxObject *)node);
        Py_DECREF(node);
        if (status < 0) return NULL;
    }
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------- releasing */

/* Mirrors _core.releasing and _core._release_unread: the append of a trace that releases the
   values no rule reads. The checks that every recording makes are here; _core._drop, called
   for the few values that pass them, makes the last ones and releases. */
static PyTypeObject *release_kind = NULL;  /* set by release(): values of this exact type */
static Py_ssize_t release_min = 0;         /* ... and of at least this many bytes */
static PyObject *drop_fn = NULL, *drop_constant_fn = NULL, *code_reads_fn = NULL;
static PyObject *reads_by_code = NULL, *reads_by_joint_code = NULL;  /* of rules and of joint rules */
static PyObject *str_nbytes = NULL, *str_base = NULL, *str_rule = NULL;

/* Mirrors _core._argument: the bit of argument k in what a rule reads. */
static int argument_bit(Py_ssize_t k) { return k < 29 ? 1 << (1 + k) : 1 << 30; }

/* What a rule reads besides the cotangent, as _core._reads (bit 0 the output, bit 1 + k
   argument k, -1 anything; -2 an error): the named rules known, the others' from the code of
   their function, asked of _core._code_reads once per code object (`joint`: a joint rule). */
static int rule_reads(PyObject *rule, int joint) {
    if (rule == rule_same || rule == rule_negated) return 0;
    if (rule == rule_times_second) return 1 << 2;
    if (rule == rule_times_first) return 1 << 1;
    if (rule == rule_times_ans) return 1;
    if (!PyFunction_Check(rule)) return -1;  /* exactly a function: a bound method's parameters start with its object */
    PyObject *code = PyFunction_GET_CODE(rule), *cache = joint ? reads_by_joint_code : reads_by_code;  /* borrowed */
    PyObject *bits = PyDict_GetItemWithError(cache, code);  /* borrowed */
    if (bits == NULL && !PyErr_Occurred()) {
        bits = PyObject_CallFunction(code_reads_fn, "OO", code, joint ? Py_True : Py_False);
        int bad = bits == NULL || PyDict_SetItem(cache, code, bits) < 0;
        Py_XDECREF(bits);  /* the dict holds it */
        if (bad) bits = NULL;
    }
    if (bits == NULL) return -2;
    long r = PyLong_AsLong(bits);
    return r == -1 && PyErr_Occurred() ? -2 : (int)r;
}

/* Mirrors _core._rules_read: the union of what the rules of `box` at the argnums of its
   parents read (-1: anything; -2: an error). */
static int rules_read(BoxObject *box) {
    PyObject *vjps = PyObject_GetAttr(box->prim, str_vjps), *parents = box->parents;
    if (vjps == NULL) return -2;
    Py_INCREF(parents);  /* (rule_reads may run Python code) */
    int joint = (PyObject *)Py_TYPE(vjps) == joint_type, reads = PyTuple_Check(parents) ? 0 : -1;
    for (Py_ssize_t j = 0; reads >= 0 && j < PyTuple_GET_SIZE(parents); j++) {
        PyObject *rule = joint ? PyObject_GetAttr(vjps, str_rule)
                               : PyObject_GetItem(vjps, PyTuple_GET_ITEM(PyTuple_GET_ITEM(parents, j), 0));
        int r = rule == NULL ? -2 : rule_reads(rule, joint);
        Py_XDECREF(rule);
        reads = r == -2 ? -2 : r < 0 ? -1 : reads | r;
    }
    Py_DECREF(parents);
    Py_DECREF(vjps);
    return reads;
}

/* Whether `value` has at least release_min bytes (-1: an error). */
static int large(PyObject *value) {
    PyObject *nbytes = PyObject_GetAttr(value, str_nbytes);
    Py_ssize_t n = nbytes ? PyLong_AsSsize_t(nbytes) : -1;
    Py_XDECREF(nbytes);
    if (n == -1 && PyErr_Occurred()) return -1;
    return n >= release_min;
}

/* Mirrors _core._holds_enough: whether `value`, or the array it views, is large (-1: an error). */
static int holds_enough(PyObject *value) {
    int n = large(value);
    if (n != 0) return n;
    PyObject *base = PyObject_GetAttr(value, str_base);
    if (base == NULL) return -1;
    n = Py_TYPE(base) == release_kind ? large(base) : 0;
    Py_DECREF(base);
    return n;
}

/* How many of the pairs of box's parents name p. */
static Py_ssize_t edges_to(BoxObject *box, BoxObject *p) {
    Py_ssize_t n = 0;
    PyObject *parents = box->parents;
    for (Py_ssize_t i = 0; PyTuple_Check(parents) && i < PyTuple_GET_SIZE(parents); i++)
        n += PyTuple_GET_ITEM(PyTuple_GET_ITEM(parents, i), 1) == (PyObject *)p;
    return n;
}

#define RELEASE_TAIL 64  /* _core._TAIL */

/* A new list of the entries after nodes[i] that use p, their edges naming p added to *edges. */
static PyObject *users_after(BoxObject *p, PyObject *nodes, Py_ssize_t i, Py_ssize_t *edges) {
    PyObject *users = PyList_New(0);
    for (Py_ssize_t j = i + 1; users != NULL && j < PyList_GET_SIZE(nodes); j++) {
        PyObject *u = PyList_GET_ITEM(nodes, j);
        Py_ssize_t e = IS_BOX(u) ? edges_to((BoxObject *)u, p) : 0;
        if (e && PyList_Append(users, u) < 0) Py_CLEAR(users);
        *edges += e;
    }
    return users;
}

/* Mirrors _core._users: a new list of the entries using p, q among them, if q is the only one
   or p lies in the last RELEASE_TAIL entries (empty if not; NULL on an error), with the number
   of their edges naming p, and where p stands (-1: not looked for). */
static PyObject *users_of(BoxObject *q, BoxObject *p, PyObject *nodes, Py_ssize_t *edges, Py_ssize_t *at) {
    *edges = edges_to(q, p);
    *at = -1;
    if (Py_REFCNT(p) == 1 + *edges) {
        PyObject *users = PyList_New(1);
        if (users != NULL) PyList_SET_ITEM(users, 0, Py_NewRef((PyObject *)q));
        return users;
    }
    *edges = 0;
    Py_ssize_t n = PyList_GET_SIZE(nodes), i = n - 1;
    while (i >= 0 && i >= n - RELEASE_TAIL && PyList_GET_ITEM(nodes, i) != (PyObject *)p) i--;
    if (i < 0 || i < n - RELEASE_TAIL) return PyList_New(0);
    *at = i;
    return users_after(p, nodes, i, edges);
}

#define RELEASE_WAITING 8  /* _core._WAITING */

/* Mirrors the waiting list of _core.releasing: where entries the program held stand, and
   their references besides the list's then. */
typedef struct {
    Py_ssize_t at[RELEASE_WAITING], refs[RELEASE_WAITING];
    int n;
} Waiting;

/* Whether a rule of the users reads p's value at an argument holding it (-1: an error). */
static int users_read(BoxObject *p, PyObject *users) {
    for (Py_ssize_t j = 0; j < PyList_GET_SIZE(users); j++) {
        BoxObject *u = (BoxObject *)PyList_GET_ITEM(users, j);
        int used = rules_read(u), positions = 0;  /* bit 1 + k: argument k is p's value */
        if (used == -2) return -1;
        PyObject *args = u->args;
        for (Py_ssize_t k = 0; PyTuple_Check(args) && k < PyTuple_GET_SIZE(args); k++)
            if (PyTuple_GET_ITEM(args, k) == p->value) positions |= argument_bit(k);
        if (used < 0 || (used & positions)) return 1;
    }
    return 0;
}

/* Mirrors _core._owns_value (1, 0; -1: an error). */
static int owns_value(BoxObject *q) {
    if (q->prim == Py_None || Py_TYPE(q->value) != release_kind || !PyTuple_Check(q->args)) return 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(q->args); k++)
        if (PyTuple_GET_ITEM(q->args, k) == q->value) return 0;
    PyObject *base = PyObject_GetAttr(q->value, str_base);
    if (base == NULL) return -1;
    Py_DECREF(base);
    return base == Py_None;
}

/* Whether the value of p is read by its own rules or by those of its users (-1: an error). */
static int read_by_rules(BoxObject *p, PyObject *users) {
    int own = rules_read(p);
    return own == -2 ? -1 : own < 0 || (own & 1) ? 1 : users_read(p, users);
}

/* The tuples and lists walked are held while Python code runs (_drop, _code_reads): an
   in-place write in that code, in another thread, replaces the parents of the entries it
   touches. */
static int release_unread(BoxObject *q, PyObject *nodes, Waiting *waiting) {
    PyObject *parents = q->parents;
    if (!PyTuple_Check(parents)) return 0;
    Py_INCREF(parents);
    int status = 0;
    for (Py_ssize_t j = 0; status == 0 && j < PyTuple_GET_SIZE(parents); j++) {
        BoxObject *p = (BoxObject *)PyTuple_GET_ITEM(PyTuple_GET_ITEM(parents, j), 1);
        if (!IS_BOX(p) || p->prim == Py_None || Py_TYPE(p->value) != release_kind
            || !PyTuple_Check(p->parents))
            continue;
        int n = holds_enough(p->value);
        if (n <= 0) { status = n; continue; }
        Py_ssize_t edges, at;
        PyObject *users = users_of(q, p, nodes, &edges, &at);
        if (users == NULL) { status = -1; continue; }
        Py_ssize_t held = Py_REFCNT(p) - 1 - edges;  /* references besides the list's and the users' */
        int wait = held > 0 && at >= 0 && waiting->n < RELEASE_WAITING;
        for (int k = 0; wait && k < waiting->n; k++) wait = waiting->at[k] != at;
        int read = PyList_GET_SIZE(users) && (held == 0 || wait) ? read_by_rules(p, users) : 1;
        if (read < 0) status = -1;
        else if (read == 0 && held == 0) {
            PyObject *r = PyObject_CallFunctionObjArgs(drop_fn, (PyObject *)p, users, NULL);
            if (r == NULL) status = -1;
            Py_XDECREF(r);
        } else if (read == 0) {
            waiting->at[waiting->n] = at;
            waiting->refs[waiting->n++] = Py_REFCNT(p) - 1;
        }
        Py_DECREF(users);
    }
    Py_DECREF(parents);
    int owns = status == 0 ? owns_value(q) : 0;  /* a write refreshes a view from its entry's arguments */
    int reads = owns > 0 ? rules_read(q) : -1;  /* the constants (h + c: c is read by no rule) */
    if (owns < 0 || reads == -2) status = -1;
    PyObject *args = q->args;
    for (Py_ssize_t k = 0; reads >= 0 && status == 0 && PyTuple_Check(args) && k < PyTuple_GET_SIZE(args); k++) {
        PyObject *a = PyTuple_GET_ITEM(args, k);
        if ((reads & argument_bit(k)) || Py_TYPE(a) != release_kind || Py_REFCNT(a) != 1)
            continue;
        int n = large(a);
        PyObject *r = n > 0 ? PyObject_CallFunction(drop_constant_fn, "On", (PyObject *)q, k) : NULL;
        if (n < 0 || (n > 0 && r == NULL)) status = -1;
        Py_XDECREF(r);
        args = q->args;  /* (replaced by _drop_constant; the new one holds the same objects) */
    }
    return status;
}

#define RELEASE_STEPS 4  /* _core._STEPS */

static int release_before(BoxObject *box, int steps, PyObject *nodes, Waiting *waiting) {
    PyObject *parents = box->parents;
    if (!PyTuple_Check(parents)) return 0;
    Py_INCREF(parents);
    int status = 0;
    for (Py_ssize_t j = 0; status == 0 && j < PyTuple_GET_SIZE(parents); j++) {
        BoxObject *q = (BoxObject *)PyTuple_GET_ITEM(PyTuple_GET_ITEM(parents, j), 1);
        if (!IS_BOX(q)) continue;
        status = release_unread(q, nodes, waiting);
        if (status == 0 && steps > 1) status = release_before(q, steps - 1, nodes, waiting);
    }
    Py_DECREF(parents);
    return status;
}

/* Take entry k off the waiting list (the last takes its place: the order does not matter). */
static void unwait(Waiting *waiting, int k) {
    waiting->n--;
    waiting->at[k] = waiting->at[waiting->n];
    waiting->refs[k] = waiting->refs[waiting->n];
}

/* Mirrors _core._release_waiting: look again at the waiting entries whose references have
   fallen since. */
static int release_waiting(Waiting *waiting, PyObject *nodes) {
    int status = 0;
    for (int k = 0; status == 0 && k < waiting->n;) {
        Py_ssize_t i = waiting->at[k];
        if (i >= PyList_GET_SIZE(nodes) || !IS_BOX(PyList_GET_ITEM(nodes, i))) {  /* (never so) */
            unwait(waiting, k);
            continue;
        }
        BoxObject *p = (BoxObject *)Py_NewRef(PyList_GET_ITEM(nodes, i));  /* (an in-place write may replace it) */
        Py_ssize_t now = Py_REFCNT(p) - 2, edges = 0;
        if (now < waiting->refs[k] && Py_TYPE(p->value) == release_kind) {
            PyObject *users = users_after(p, nodes, i, &edges);
            int read = users == NULL ? -1 : now == edges ? read_by_rules(p, users) : 1;
            if (read < 0) status = -1;
            else if (read == 0) {
                PyObject *r = PyObject_CallFunctionObjArgs(drop_fn, (PyObject *)p, users, NULL);
                status = r == NULL ? -1 : release_unread(p, nodes, waiting);  /* (the array a view held) */
                Py_XDECREF(r);
            }
            Py_XDECREF(users);
        }
        waiting->refs[k] = now;
        if (Py_TYPE(p->value) != release_kind || PyList_GET_SIZE(nodes) - i >= RELEASE_TAIL)
            unwait(waiting, k);
        else
            k++;
        Py_DECREF(p);
    }
    return status;
}

typedef struct {
    PyObject_HEAD
    PyObject *nodes;
    Waiting waiting;
    int busy;  /* releasing: an entry recorded meanwhile (by the Python code it calls, another thread) is only appended */
    vectorcallfunc vectorcall;
} AppenderObject;

static PyObject *appender_call(AppenderObject *self, PyObject *const *args, size_t nargsf,
                               PyObject *kwnames) {
    if (PyVectorcall_NARGS(nargsf) != 1 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "append() takes one entry");
        return NULL;
    }
    PyObject *box = args[0];
    if (PyList_Append(self->nodes, box) < 0) return NULL;
    if (release_kind != NULL && !self->busy && IS_BOX(box) && Py_TYPE(((BoxObject *)box)->value) == release_kind) {
        Py_ssize_t n = large(((BoxObject *)box)->value);
        if (n < 0) return NULL;
        if (!n) Py_RETURN_NONE;
        self->busy = 1;
        int status = release_before((BoxObject *)box, RELEASE_STEPS - 1, self->nodes, &self->waiting);
        if (status == 0 && self->waiting.n) status = release_waiting(&self->waiting, self->nodes);
        self->busy = 0;
        if (status < 0) return NULL;
    }
    Py_RETURN_NONE;
}

static int appender_traverse(AppenderObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->nodes);
    return 0;
}

static int appender_clear(AppenderObject *self) {
    Py_CLEAR(self->nodes);
    return 0;
}

static void appender_dealloc(AppenderObject *self) {
    PyObject_GC_UnTrack(self);
    appender_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject AppenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wengert._speedups.Appender",
    .tp_doc = "The append of a trace that releases unread values (see wengert._core.releasing).",
    .tp_basicsize = sizeof(AppenderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(AppenderObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)appender_traverse,
    .tp_clear = (inquiry)appender_clear,
    .tp_dealloc = (destructor)appender_dealloc,
};

static PyObject *releasing(PyObject *module, PyObject *nodes) {
    if (!PyList_Check(nodes)) {
        PyErr_SetString(PyExc_TypeError, "releasing() takes the list of a trace");
        return NULL;
    }
    AppenderObject *self = PyObject_GC_New(AppenderObject, &AppenderType);
    if (self == NULL) return NULL;
    self->vectorcall = (vectorcallfunc)appender_call;
    self->nodes = Py_NewRef(nodes);
    self->waiting.n = 0;
    self->busy = 0;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static PyObject *set_release(PyObject *module, PyObject *args) {
    PyObject *kind, *drop, *drop_constant, *code_reads;
    Py_ssize_t min;
    if (!PyArg_ParseTuple(args, "O!nOOO:release", &PyType_Type, &kind, &min, &drop, &drop_constant, &code_reads))
        return NULL;
    if (reads_by_code == NULL && (reads_by_code = PyDict_New()) == NULL) return NULL;
    if (reads_by_joint_code == NULL && (reads_by_joint_code = PyDict_New()) == NULL) return NULL;
    PyDict_Clear(reads_by_code);  /* (the readers may have changed) */
    PyDict_Clear(reads_by_joint_code);
    Py_XSETREF(release_kind, (PyTypeObject *)Py_NewRef(kind));
    Py_XSETREF(drop_fn, Py_NewRef(drop));
    Py_XSETREF(code_reads_fn, Py_NewRef(code_reads));
    Py_XSETREF(drop_constant_fn, Py_NewRef(drop_constant));
    release_min = min;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------- module */

static PyObject *configure(PyObject *module, PyObject *args) {
    PyObject *apply, *kwargs, *helpers[5], *retry, *joint, *sweep_joint, *pending;
    if (!PyArg_ParseTuple(args, "OO!(OOOOO)OO!OO!", &apply, &PyDict_Type, &kwargs, &helpers[0],
                          &helpers[1], &helpers[2], &helpers[3], &helpers[4], &retry,
                          &PyType_Type, &joint, &sweep_joint, &PyType_Type, &pending))
        return NULL;
    Py_XSETREF(pending_type, (PyTypeObject *)Py_NewRef(pending));
    Py_XSETREF(retry_fn, Py_NewRef(retry));
    Py_XSETREF(joint_type, Py_NewRef(joint));
    Py_XSETREF(sweep_joint_fn, Py_NewRef(sweep_joint));
    Py_XSETREF(rule_same, Py_NewRef(helpers[0]));
    Py_XSETREF(rule_negated, Py_NewRef(helpers[1]));
    Py_XSETREF(rule_times_second, Py_NewRef(helpers[2]));
    Py_XSETREF(rule_times_first, Py_NewRef(helpers[3]));
    Py_XSETREF(rule_times_ans, Py_NewRef(helpers[4]));
    Py_XSETREF(apply_fn, Py_NewRef(apply));
    Py_XSETREF(no_kwargs, Py_NewRef(kwargs));
    Py_RETURN_NONE;
}

static PyObject *watch(PyObject *module, PyObject *arg) {
    PyObject *types = PyType_Check(arg) ? PyTuple_Pack(1, arg) : (PyTuple_Check(arg) ? Py_NewRef(arg) : NULL);
    int ok = types != NULL && PyTuple_GET_SIZE(types) <= MAX_WATCHED;
    for (Py_ssize_t i = 0; ok && i < PyTuple_GET_SIZE(types); i++)
        ok = PyType_Check(PyTuple_GET_ITEM(types, i));
    if (!ok) {
        Py_XDECREF(types);
        PyErr_SetString(PyExc_TypeError, "watch() takes a type or a tuple of at most 8 types");
        return NULL;
    }
    Py_XSETREF(watched_types, types);
    n_watched = PyTuple_GET_SIZE(types);
    for (Py_ssize_t i = 0; i < n_watched; i++) watched[i] = (PyTypeObject *)PyTuple_GET_ITEM(types, i);
    Py_RETURN_NONE;
}

static PyObject *set_pausing(PyObject *module, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    pausing = n;
    Py_RETURN_NONE;
}

/* uses(nodes, box, stop): see wengert._core._uses (the loops of rebind, one pointer compare
   per entry instead of a Python step). */
static PyObject *uses(PyObject *module, PyObject *args) {
    PyObject *nodes, *box;
    Py_ssize_t stop;
    if (!PyArg_ParseTuple(args, "O!On:uses", &PyList_Type, &nodes, &box, &stop))
        return NULL;
    if (stop > PyList_GET_SIZE(nodes)) stop = PyList_GET_SIZE(nodes);
    Py_ssize_t i = stop - 1;
    while (i >= 0 && PyList_GET_ITEM(nodes, i) != box) i--;
    PyObject *users = PyList_New(0);
    if (users == NULL) return NULL;
    for (Py_ssize_t j = i + 1; j < stop; j++) {
        PyObject *n = PyList_GET_ITEM(nodes, j);
        if (Py_TYPE(n) != Box) {
            Py_DECREF(users);
            PyErr_SetString(PyExc_TypeError, "uses(): an entry of the list is not a Box");
            return NULL;
        }
        PyObject *parents = ((BoxObject *)n)->parents;
        if (parents == NULL || !PyTuple_Check(parents)) continue;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(parents); k++) {
            PyObject *pair = PyTuple_GET_ITEM(parents, k);
            if (PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2 && PyTuple_GET_ITEM(pair, 1) == box) {
                if (PyList_Append(users, n) < 0) { Py_DECREF(users); return NULL; }
                break;
            }
        }
    }
    return Py_BuildValue("nN", i, users);
}

/* Mirrors _core._named: for each entry of `nodes` whose id `index` maps to k, the (entry,
   pair) of the later entries whose parents name it, in list k of the result. */
static PyObject *named(PyObject *module, PyObject *args) {
    PyObject *nodes, *index;
    if (!PyArg_ParseTuple(args, "O!O!:named", &PyList_Type, &nodes, &PyDict_Type, &index))
        return NULL;
    Py_ssize_t left = PyDict_GET_SIZE(index);
    PyObject *out = PyList_New(left);
    if (out == NULL) return NULL;
    for (Py_ssize_t k = 0; k < left; k++) {
        PyObject *l = PyList_New(0);
        if (l == NULL) { Py_DECREF(out); return NULL; }
        PyList_SET_ITEM(out, k, l);
    }
    for (Py_ssize_t i = PyList_GET_SIZE(nodes) - 1; i >= 0 && left > 0; i--) {
        PyObject *node = PyList_GET_ITEM(nodes, i);
        if (!IS_BOX(node)) continue;
        PyObject *key = PyLong_FromVoidPtr(node);
        int listed = key ? PyDict_Contains(index, key) : -1;
        Py_XDECREF(key);
        if (listed < 0) goto fail;
        if (listed && --left == 0) break;  /* the pairs naming an entry come after it */
        PyObject *parents = ((BoxObject *)node)->parents;
        if (parents == NULL || !PyTuple_Check(parents)) continue;
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(parents); j++) {
            PyObject *pair = PyTuple_GET_ITEM(parents, j);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) continue;
            PyObject *pkey = PyLong_FromVoidPtr(PyTuple_GET_ITEM(pair, 1));
            PyObject *k = pkey ? PyDict_GetItemWithError(index, pkey) : NULL;
            Py_XDECREF(pkey);
            if (k == NULL) {
                if (PyErr_Occurred()) goto fail;
                continue;
            }
            Py_ssize_t kk = PyLong_AsSsize_t(k);
            if (kk < 0 || kk >= PyList_GET_SIZE(out)) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "named(): an index out of range");
                goto fail;
            }
            PyObject *item = PyTuple_Pack(2, node, pair);
            int bad = item == NULL || PyList_Append(PyList_GET_ITEM(out, kk), item) < 0;
            Py_XDECREF(item);
            if (bad) goto fail;
        }
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"uses", uses, METH_VARARGS, "uses(nodes, box, stop): see wengert._core._uses."},
    {"named", named, METH_VARARGS, "named(nodes, index): see wengert._core._named."},
    {"configure", configure, METH_VARARGS,
     "configure(apply, NO_KWARGS, (same, negated, times_second, times_first, times_ans), retry, Joint, sweep_node, Pending)"},
    {"set_pausing", set_pausing, METH_O, "Mirror _core._pausing (open no_grad blocks)."},
    {"watch", watch, METH_O, "watch(types): constants of these types (a type or a tuple) take apply (see _core.watch)."},
    {"unary", unary, METH_VARARGS, "unary(prim, fun, fallback): see wengert._core.unary."},
    {"binary", binary, METH_VARARGS, "binary(prim, fun, fallback): see wengert._core.binary."},
    {"protocols", protocols, METH_VARARGS,
     "protocols(table, array_ufunc, array_function): a box's __array_ufunc__ and __array_function__ (see wengert.numpy._box)."},
    {"sweep", sweep, METH_VARARGS, "sweep(nodes, free): see wengert._core._sweep."},
    {"releasing", releasing, METH_O, "releasing(nodes): see wengert._core.releasing."},
    {"release", set_release, METH_VARARGS, "release(kind, min_bytes, drop, drop_constant, code_reads): see wengert._core.release."},
    {NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "wengert._speedups",
    "Compiled hot paths of wengert._core (see _core.py for the reference).", -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    if (PyType_Ready(&RecorderType) < 0 || PyType_Ready(&AppenderType) < 0) return NULL;
    str_append = PyUnicode_InternFromString("append");
    str_fit = PyUnicode_InternFromString("fit");
    str_vjps = PyUnicode_InternFromString("vjps");
    str_dense = PyUnicode_InternFromString("dense");
    str_added_to = PyUnicode_InternFromString("added_to");
    str_name = PyUnicode_InternFromString("name");
    str_add_note = PyUnicode_InternFromString("add_note");
    str_nbytes = PyUnicode_InternFromString("nbytes");
    str_base = PyUnicode_InternFromString("base");
    str_rule = PyUnicode_InternFromString("rule");
    int0 = PyLong_FromLong(0);
    int1 = PyLong_FromLong(1);
    empty_tuple = PyTuple_New(0);
    if (!empty_tuple || !str_nbytes || !str_base || !str_rule || !str_append || !str_fit || !str_vjps || !str_dense || !str_added_to || !str_name || !str_add_note || !int0 || !int1) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) return NULL;
    Box = (PyTypeObject *)PyType_FromSpec(&box_spec);
    if (Box == NULL || PyModule_AddObject(m, "Box", Py_NewRef((PyObject *)Box)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
