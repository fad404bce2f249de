"""A prelude for probe scripts run by another Python (an ordinary user's system Python, a virtual environment's):
it loads the sandbox package alone, standard library only, from the folder given as argv[1], as `I` (isolation)
and `J` (judge)."""

LOAD = r'''
import importlib.util, json, os, sys, time, types
root = sys.argv[1]
for name in ("backends", "backends.rewards"):  # only the sandbox package: the system Python lacks our deps
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = []
pkg = types.ModuleType("backends.rewards.sandbox")
pkg.__path__ = [root]
sys.modules[pkg.__name__] = pkg
for mod in ("seccomp", "isolation", "judge"):
    spec = importlib.util.spec_from_file_location(f"backends.rewards.sandbox.{mod}", f"{root}/{mod}.py")
    m = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = m
    setattr(pkg, mod, m)
    spec.loader.exec_module(m)
I, J = sys.modules["backends.rewards.sandbox.isolation"], sys.modules["backends.rewards.sandbox.judge"]
'''
