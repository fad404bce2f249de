"""Runs INSIDE a sandbox as its first process (see isolation.py). Standalone: imports only the standard library.

    python -I -S -B /sandbox/worker.py MODE RLIMITS_JSON

It sets the rlimits before any untrusted code runs, then:
- program:  run the solution (/sandbox/solution.py) as `__main__`; the parent feeds stdin, reads stdout.
- programs: the same for each of a row's inputs, in a fresh forked child per input (one sandbox per row).
- solution: load the solution as a module, report its callable names, then answer call requests, one JSON
            line each, with the return value in the tagged encoding below (never the object itself).
- judge:    (no solution code in this process) run a row's test snippets with every solution name bound to
            a proxy that asks the parent, which asks the solution sandbox; report one verdict per test.
The parent compares stdout itself for programs and trusts only the judge's verdicts for calls: whatever the
solution writes is only ever treated as its answer, decoded here into plain data.

Tagged encoding (JSON): None, bools, ints, floats, strings as themselves; {"l": [...]} list, {"t": [...]}
tuple, {"s": [...]} set, {"fs": [...]} frozenset, {"d": [[k, v], ...]} dict, {"b": "hex"} bytes,
{"c": [re, im]} complex, {"i": [...]} an iterator's items, {"r": n} an object that stays in the solution.
"""

import ast
import builtins
import json
import os
import resource
import sys

SOLUTION = "/sandbox/solution.py"
MAX_ITEMS = 1_000_000  # items read from a returned iterator


FILTER = ""  # the untrusted-code seccomp filter (hex), from the limits argument


def set_limits(lim):
    global FILTER
    FILTER = lim.get("seccomp", "")
    for res, key in ((resource.RLIMIT_AS, "as"), (resource.RLIMIT_FSIZE, "fsize"), (resource.RLIMIT_NPROC, "nproc"),
                     (resource.RLIMIT_CPU, "cpu"), (resource.RLIMIT_NOFILE, "nofile"), (resource.RLIMIT_CORE, None)):
        value = int(lim[key]) if key else 0
        soft, hard = resource.getrlimit(res)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(res, (value, value))


def filter_installer(program_hex):
    """A function that adds the trusted side's seccomp filter (no exec; no new process where the host cannot
    bound a tree) on top of bubblewrap's, for the worker to call just before untrusted code runs. ctypes and the
    program are prepared here once (a forked child only calls prctl). It cannot be removed once added, and an
    error means the untrusted code does not run."""
    import ctypes

    if not program_hex:
        raise OSError("no seccomp filter was given to the worker")
    prog = bytes.fromhex(program_hex)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(prog, len(prog))
    fprog = SockFprog(len(prog) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    # not dumpable (inherited by forks): a solution cannot open the worker's /proc/<pid>/fd (its pipes to the
    # trainer), /proc/<pid>/mem or environ, nor take its fds with pidfd_getfd, though they share a uid
    if libc.prctl(4, 0, None, 0, 0) != 0:  # PR_SET_DUMPABLE
        raise OSError(ctypes.get_errno(), "PR_SET_DUMPABLE")

    def install():
        if libc.prctl(38, 1, None, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS (bubblewrap set it already)
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
            raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")
        install.keep = (buf, fprog)

    return install


_install_filter = None  # prepared once per worker


def lock_down():
    global _install_filter
    if _install_filter is None:
        _install_filter = filter_installer(FILTER)
    _install_filter()


# -- the tagged encoding --------------------------------------------------------------------------------------


def encode(v, refs):
    t = type(v)  # exact types: a subclass (with its own __eq__, say) is not plain data
    if v is None or t in (bool, int, float, str):
        return v
    if t is list:
        return {"l": [encode(x, refs) for x in v]}
    if t is tuple:
        return {"t": [encode(x, refs) for x in v]}
    if t is set:
        return {"s": [encode(x, refs) for x in v]}
    if t is frozenset:
        return {"fs": [encode(x, refs) for x in v]}
    if t is dict:
        return {"d": [[encode(k, refs), encode(x, refs)] for k, x in v.items()]}
    if t in (bytes, bytearray):
        return {"b": bytes(v).hex()}
    if t is complex:
        return {"c": [v.real, v.imag]}
    if t in (range, map, filter, zip, enumerate, reversed) or t.__name__ in (
            "generator", "list_iterator", "tuple_iterator", "dict_keyiterator", "dict_valueiterator",
            "dict_itemiterator", "set_iterator", "str_iterator", "range_iterator"):
        items = []
        for x in v:
            items.append(encode(x, refs))
            if len(items) > MAX_ITEMS:
                raise OverflowError("iterator too long")
        return {"i": items}
    if t in (type({}.keys()), type({}.values()), type({}.items())):
        return {"l": [encode(x, refs) for x in v]}
    return refs.add(v)


def decode(v, ref):
    if v is None or type(v) in (bool, int, float, str):
        return v
    if type(v) is not dict or not 1 <= len(v) <= 2 or (len(v) == 2 and set(v) != {"r", "c"}):
        raise ValueError("not the tagged encoding")
    tag, x = next(iter(v.items()))
    if tag == "l":
        return [decode(i, ref) for i in x]
    if tag == "t":
        return tuple(decode(i, ref) for i in x)
    if tag == "s":
        return {decode(i, ref) for i in x}
    if tag == "fs":
        return frozenset(decode(i, ref) for i in x)
    if tag == "d":
        return {decode(k, ref): decode(i, ref) for k, i in x}
    if tag == "b":
        return bytes.fromhex(x)
    if tag == "c":
        return complex(float(x[0]), float(x[1]))
    if tag == "i":
        return iter([decode(i, ref) for i in x])
    if tag == "r":
        return ref(int(x), bool(v.get("c")))
    raise ValueError("unknown tag")


class _Refs:
    def __init__(self):
        self.objects = {}

    def add(self, obj):
        n = len(self.objects) + 1
        self.objects[n] = obj
        return {"r": n, "c": callable(obj)}  # whether it can be called: callable() in the judge is then honest


def error_name(e):
    """The built-in class nearest to the exception's type (a KeyError subclass is a KeyError), found by identity."""
    for t in type(e).__mro__:
        name = type.__dict__["__name__"].__get__(t)  # the class's own name, whatever its metaclass says
        if getattr(builtins, name, None) is t:
            return name
    return "Exception"


# -- modes ------------------------------------------------------------------------------------------------


def _protocol():
    """Keep the pipes to the parent on private fds; the code's own stdin/stdout/stderr become /dev/null."""
    rx = os.fdopen(os.dup(0), "rb")
    tx = os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    sys.stdin = open(0, "r", closefd=False)
    sys.stdout = sys.stderr = open(1, "w", closefd=False)

    def send(obj):
        data = (json.dumps(obj, separators=(",", ":")) + "\n").encode()
        while data:
            data = data[os.write(tx, data):]

    def receive():
        line = rx.readline()  # the parent bounds what it relays
        if not line.endswith(b"\n"):
            raise EOFError
        return json.loads(line)

    return send, receive


def serve_solution():
    send, receive = _protocol()
    ns = {"__name__": "solution", "__builtins__": builtins}
    try:
        with open(SOLUTION, encoding="utf-8") as f:
            source = f.read()
        lock_down()
        exec(compile(source, "solution.py", "exec"), ns)
    except BaseException as e:  # noqa: BLE001  (SystemExit included: the solution did not load)
        send({"load_error": error_name(e)})
        return
    names, modules, imports = [], {}, {}
    for k, v in list(ns.items()):
        if not (isinstance(k, str) and k.isidentifier()) or k.startswith("__"):
            continue
        if type(v) is type(os) and isinstance(getattr(v, "__name__", None), str):
            modules[k] = v.__name__  # the tests see the solution's `import math`: the judge imports its own
        elif callable(v):
            mod, qual = getattr(v, "__module__", None), getattr(v, "__qualname__", None)
            if isinstance(mod, str) and qual == k and mod in sys.stdlib_module_names:
                imports[k] = [mod, qual]  # `from collections import Counter`: the judge's own Counter
            else:
                names.append(k)  # its own functions and classes, and `my_gcd = math.gcd`: called over there
    send({"names": sorted(names)[:1000], "modules": dict(list(modules.items())[:200]),
          "imports": dict(list(imports.items())[:200])})
    refs = _Refs()

    def ref(n, can_call=False):
        return refs.objects[n]

    while True:
        try:
            req = receive()
        except EOFError:
            return
        try:
            if "get" in req:  # an attribute of a kept object: its value, or AttributeError
                if not isinstance(req["get"], str) or req["get"].startswith("__"):
                    raise AttributeError(req["get"])
                value = getattr(ref(req["ref"]), req["get"])
            else:
                target = ns[req["name"]] if "name" in req else ref(req["ref"])
                args = [decode(a, ref) for a in req["args"]]
                kwargs = {k: decode(a, ref) for k, a in req["kwargs"].items()}
                value = target(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001  (the solution's own exception: relayed by its built-in type)
            send({"err": error_name(e)})
            continue
        try:  # an answer that cannot be sent (an endless iterator, an int over 4,300 digits) is no answer
            send({"ok": encode(value, refs)})
        except BaseException:  # noqa: BLE001
            send({"err": "unsendable"})


# Exceptions that end a loop, an iteration or the interpreter when raised: relayed from the solution they would end
# the judge's map(), any() or iter() early and make unchecked tests pass, so they fail the test instead.
CONTROL_FLOW = (StopIteration, StopAsyncIteration)
# Every protocol Python may ask of an object, besides reading attributes and calling it: on an object the solution
# kept, each fails the test (see Remote in run_judge).
REFUSED_PROTOCOLS = tuple(f"__{n}__" for n in (
    "bool len length_hint iter next reversed contains getitem setitem delitem missing "
    "eq ne lt le gt ge hash str repr format bytes int float complex index round trunc floor ceil "
    "abs neg pos invert enter exit await aiter anext aenter aexit fspath setattr delattr dir sizeof "
    "add radd iadd sub rsub isub mul rmul imul matmul rmatmul imatmul truediv rtruediv itruediv "
    "floordiv rfloordiv ifloordiv mod rmod imod divmod rdivmod pow rpow ipow lshift rlshift ilshift "
    "rshift rrshift irshift and rand iand xor rxor ixor or ror ior").split())
ASSERT_COUNTER = "_r1dsl_assert_ran"  # a name no test uses: counts the assert statements the test executed


def _is_check(node) -> bool:
    """An assert that checks something; `assert False` (as in `try: f() except E: pass else: assert False`) only
    marks a failure."""
    return isinstance(node, ast.Assert) and not (isinstance(node.test, ast.Constant) and not node.test.value)


class _Counted(ast.NodeTransformer):
    """Before each checking `assert`, a call that counts it: a test whose checks never ran tested nothing."""

    def visit_Assert(self, node):
        if not _is_check(node):
            return node
        tick = ast.Expr(ast.Call(ast.Name(ASSERT_COUNTER, ast.Load()), [], []))
        return [ast.copy_location(tick, node), node]


def _run_test(test, names, modules, shadow, proxy, entry_point):
    """One test snippet's verdict. It passes only when it runs to the end without an exception and, if it has
    `assert` statements, at least one of them ran: `def check(candidate)` is called with the entry point (which
    must be one of the solution's functions), and pytest-style `def test_*()` functions are called."""
    ran = [0]

    def tick():
        ran[0] += 1

    try:
        tree = ast.parse(test, "test.py")
        asserts = sum(_is_check(n) for n in ast.walk(tree))
        code = compile(ast.fix_missing_locations(_Counted().visit(tree)), "test.py", "exec")
        ns = {"__name__": "__main__", "__builtins__": builtins, **modules}
        ns.update({n: proxy(n) for n in names if n not in shadow})
        ns[ASSERT_COUNTER] = tick
        defs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        exec(code, ns)
        if "check" in defs and entry_point:  # HumanEval: `def check(candidate)`, called with the function under test
            if entry_point not in names or entry_point in shadow:
                return False  # the solution has no such function: nothing was tested
            ns["check"](ns[entry_point])
        for name, node in sorted(defs.items()):  # pytest style: `def test_x():` is called
            if name.startswith("test") and len(node.args.args) == len(node.args.defaults) and not node.args.kwonlyargs:
                ns[name]()
        return not asserts or ran[0] > 0  # asserts that never ran (check never called, an empty loop): no test
    except BaseException:  # noqa: BLE001  (a failing assert, an error, the solution gone)
        return False


class SolutionGone(BaseException):
    """The solution sandbox timed out, died or answered garbage: the test fails, whatever it catches."""


def run_judge():
    send, receive = _protocol()
    req = receive()
    tests, names = req["tests"], [n for n in req["names"] if isinstance(n, str) and n.isidentifier()]
    entry_point = req.get("entry_point")
    # What the solution imported from the standard library (tests run in its namespace used to see it), imported
    # here afresh. Only under its own name (`import math`, `from heapq import heappush`): a solution must not
    # rebind a name the test uses to some other object, nor any builtin (`abs`, `sorted`, `isinstance`).
    shadow = set(dir(builtins))
    modules = {}
    for alias, name in dict(req.get("modules", {})).items():
        if isinstance(name, str) and alias == name and alias.isidentifier() and alias not in shadow \
                and name in sys.stdlib_module_names:
            try:
                modules[alias] = __import__(name)
            except BaseException:  # noqa: BLE001
                pass
    for alias, spec in dict(req.get("imports", {})).items():
        try:
            mod, qual = spec
            if alias == qual and alias.isidentifier() and alias not in shadow and mod in sys.stdlib_module_names:
                obj = getattr(__import__(mod), qual)
                if callable(obj) and type(obj) is not type(sys):
                    modules[alias] = obj
        except BaseException:  # noqa: BLE001
            pass

    def call(payload):
        send({"call": payload})
        try:
            reply = receive()
            if "ok" in reply:
                return decode(reply["ok"], handle)
            err = reply.get("err")
        except BaseException:  # noqa: BLE001
            raise SolutionGone() from None
        cls = getattr(builtins, err, None) if isinstance(err, str) else None
        if isinstance(cls, type) and issubclass(cls, Exception) and not issubclass(cls, CONTROL_FLOW):
            try:
                exc = cls("raised by the solution")
            except BaseException:  # noqa: BLE001  (UnicodeDecodeError, ExceptionGroup: not from a message)
                raise SolutionGone() from None
            raise exc
        # StopIteration would silently end the judge's map() or iter(); anything else unknown: the test fails
        raise SolutionGone()

    def wire(args, kwargs):
        return [encode(a, _NoRefs) for a in args], {str(k): encode(a, _NoRefs) for k, a in kwargs.items()}

    def me(remote):
        return object.__getattribute__(remote, "_r1dsl_ref")

    def refuse(*args, **kwargs):
        raise SolutionGone()

    class Remote:
        """An object the solution returned that is not plain data. Its attributes are read over there (a value,
        a method to call there, or AttributeError: hasattr() is honest), and it can be called there. Every other
        question about it (truthiness, len, iteration, comparison, hash, str, arithmetic, `with`, `await`) fails
        the test: the solution's answers to those are its own code, and no default answer stands in for them."""

        __slots__ = ("_r1dsl_ref",)

        def __init__(self, n):
            object.__setattr__(self, "_r1dsl_ref", n)

        def __getattribute__(self, attr):
            if attr.startswith("__"):  # `obj.__len__`, hasattr(obj, "__iter__"): a protocol question, refused
                raise SolutionGone()
            return call({"ref": me(self), "get": attr})  # AttributeError from there: hasattr() is honest

    class RemoteFunction(Remote):
        """A handle the solution says is callable (callable() is honest): calling it calls it over there."""

        __slots__ = ()

        def __call__(self, *args, **kwargs):
            a, k = wire(args, kwargs)
            return call({"ref": me(self), "args": a, "kwargs": k})

    for _name in REFUSED_PROTOCOLS:
        setattr(Remote, _name, refuse)

    def handle(n, can_call):
        return RemoteFunction(n) if can_call else Remote(n)

    class _NoRefs:
        @staticmethod
        def add(obj):
            if isinstance(obj, Remote):
                return {"r": me(obj)}
            raise TypeError("only plain data can be passed to the solution")

    def proxy(name):
        def f(*args, **kwargs):
            a, k = wire(args, kwargs)
            return call({"name": name, "args": a, "kwargs": k})
        f.__name__ = f.__qualname__ = name
        return f

    for i, test in enumerate(tests):
        send({"verdict": i, "ok": _run_test(test, names, modules, shadow, proxy, entry_point)})
    send({"done": True})


def run_program(code=None):
    try:
        lock_down()
    except BaseException:  # noqa: BLE001  (no filter, no run)
        os._exit(1)
    sys.argv = [SOLUTION]
    ns = {"__name__": "__main__", "__file__": SOLUTION, "__builtins__": builtins}
    try:
        if code is None:
            with open(SOLUTION, encoding="utf-8") as f:
                code = compile(f.read(), SOLUTION, "exec")
        exec(code, ns)
    except SystemExit as e:
        _flush()
        os._exit(e.code if type(e.code) is int and 0 <= e.code < 256 else (0 if e.code is None else 1))
    except BaseException:  # noqa: BLE001
        _flush()
        os._exit(1)
    _flush()
    os._exit(0)


def run_programs():
    """Many stdin/stdout runs in one sandbox: a fresh forked child per input, in its own session, killed with
    everything it started (that stayed in its session) at `per_test_s` or beyond `max_output` bytes. Sends a
    header line {"i", "exit", "n"} and then n bytes of stdout per run; the parent compares."""
    rx = os.fdopen(os.dup(0), "rb")
    tx = os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    req = json.loads(rx.readline())
    per_test_s, max_output = float(req["per_test_s"]), int(req["max_output"])
    try:
        with open(SOLUTION, encoding="utf-8") as f:
            code = compile(f.read(), SOLUTION, "exec")
    except BaseException:  # noqa: BLE001  (every run fails as the script would)
        code = None
    global _install_filter
    try:
        _install_filter = filter_installer(FILTER)  # once; each child only installs it
    except BaseException:  # noqa: BLE001  (no filter: every run fails)
        code = None
    for i, text in enumerate(req["inputs"]):
        out, status = b"", 1
        if code is not None:
            out, status = _one_run(code, str(text).encode(), per_test_s, max_output, null)
        data = (json.dumps({"i": i, "exit": status, "n": len(out)}) + "\n").encode() + out
        while data:
            data = data[os.write(tx, data):]


def _one_run(code, stdin, per_test_s, max_output, null):
    import select
    import signal
    import time

    inp = os.memfd_create("stdin")
    os.write(inp, stdin)
    os.lseek(inp, 0, os.SEEK_SET)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.dup2(inp, 0)
            os.dup2(w, 1)
            os.dup2(null, 2)
            os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
            sys.stdin = open(0, "r", closefd=False)
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            run_program(code)
        finally:
            os._exit(1)
    os.close(w)
    os.close(inp)
    out, end, status = bytearray(), time.monotonic() + per_test_s, None
    while True:
        left = end - time.monotonic()
        if left <= 0 or len(out) > max_output:
            break
        ready, _, _ = select.select([r], [], [], left)
        if not ready:
            continue
        chunk = os.read(r, 65536)
        if not chunk:
            break
        out += chunk
    while status is None:  # its stdout closed: give it what is left of its time to exit
        done, code_ = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(code_)
        elif time.monotonic() >= end or len(out) > max_output:
            break
        else:
            time.sleep(0.002)
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    if status is None:
        os.waitpid(pid, 0)
        status = -9
    if len(out) > max_output:
        status = -1  # too much output fails the run
    os.close(r)
    return bytes(out[:max_output]), status


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass


def main():
    os.closerange(3, resource.getrlimit(resource.RLIMIT_NOFILE)[0])  # nothing inherited beyond stdin/out/err
    mode = sys.argv[1]
    set_limits(json.loads(sys.argv[2]))
    if mode == "program":  # run as a script in this interpreter (one interpreter start, not two)
        run_program()
    elif mode == "programs":
        run_programs()
    elif mode == "solution":
        serve_solution()
    elif mode == "judge":
        run_judge()
    os._exit(0)


if __name__ == "__main__":
    main()
