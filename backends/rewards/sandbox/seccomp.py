"""Seccomp filters for the code sandbox, compiled here (pure Python, classic BPF) on the trusted side.

Two filters, both returning an error (never killing) for what they refuse:
- `kernel_filter`, given to bubblewrap (`--seccomp FD`) for every process of every sandbox: the kernel surface
  CPython and the judged code never need is refused. The list follows Docker's and Flatpak's default policies:
  io_uring, ptrace and process_vm_*, bpf, perf_event_open, the key ring, every mount and namespace call
  (mount, umount2, pivot_root, the new mount API, unshare, setns, clone or clone3 asking for a namespace),
  modules, kexec, reboot, swap, userfaultfd, open_by_handle_at, quotactl, acct, clock and host-name setters,
  syslog, chroot, fanotify, NUMA policy calls, personality, and the x32 ABI. Any other architecture than the
  one the filter was built for is refused outright (a 32-bit syscall from a 64-bit process). `clone3` gets
  ENOSYS, so the C library falls back to `clone`, whose flags the filter can read.
- `untrusted_filter`, installed by the sandbox's trusted worker (prctl) just before untrusted code runs, on top
  of the first: `execve`/`execveat` are refused (a binary written to /tmp cannot be run), and, where the host
  cannot bound a process tree (no cgroups: the unprivileged case), `fork`, `vfork` and a `clone` that is not a
  thread, so a solution is one process whose memory RLIMIT_AS bounds.

A denylist, not an allowlist: CPython's needs vary across versions and C libraries, and an allowlist that
misses one call fails honest solutions. Each refused class has a test (tests/rewards/test_sandbox_kernel.py).
"""

from __future__ import annotations

import platform
import struct

# seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
_NR, _ARCH, _ARG0 = 0, 4, 16  # args[0]'s low 32 bits (little-endian hosts: x86_64, aarch64)
_LD_W_ABS, _JEQ_K, _JGE_K, _JSET_K, _RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
ALLOW = 0x7FFF0000
_ERRNO = 0x00050000
EPERM, ENOSYS = 1, 38
X32_BIT = 0x40000000
CLONE_THREAD = 0x00010000
CLONE_NEW = (0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
             | 0x00000080)  # NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME

# (AUDIT_ARCH_*, syscall numbers by name) per architecture
ARCHES = {
    "x86_64": (0xC000003E, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "bpf": 321, "perf_event_open": 298,
        "keyctl": 250, "add_key": 248, "request_key": 249, "mount": 165, "umount2": 166, "pivot_root": 155,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "mount_setattr": 442, "unshare": 272, "setns": 308, "kexec_load": 246, "kexec_file_load": 320,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "reboot": 169, "swapon": 167,
        "swapoff": 168, "userfaultfd": 323, "acct": 163, "quotactl": 179, "quotactl_fd": 443,
        "name_to_handle_at": 303, "open_by_handle_at": 304, "lookup_dcookie": 212, "syslog": 103, "iopl": 172,
        "ioperm": 173, "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305, "adjtimex": 159,
        "sethostname": 170, "setdomainname": 171, "chroot": 161, "fanotify_init": 300, "mbind": 237,
        "migrate_pages": 256, "move_pages": 279, "set_mempolicy": 238, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "personality": 135, "vhangup": 153, "kcmp": 312,
        "modify_ldt": 154, "uselib": 134, "ustat": 136, "sysfs": 139, "_sysctl": 156, "create_module": 174,
        "get_kernel_syms": 177, "query_module": 178, "nfsservctl": 180, "pidfd_getfd": 438, "process_madvise": 440,
        "getpmsg": 181, "putpmsg": 182, "afs_syscall": 183, "tuxcall": 184, "security": 185,
        "clone": 56, "clone3": 435, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322,
    }),
    "aarch64": (0xC00000B7, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "bpf": 280, "perf_event_open": 241,
        "keyctl": 219, "add_key": 217, "request_key": 218, "mount": 40, "umount2": 39, "pivot_root": 41,
        "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
        "mount_setattr": 442, "unshare": 97, "setns": 268, "kexec_load": 104, "kexec_file_load": 294,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "reboot": 142, "swapon": 224,
        "swapoff": 225, "userfaultfd": 282, "acct": 89, "quotactl": 60, "quotactl_fd": 443,
        "name_to_handle_at": 264, "open_by_handle_at": 265, "lookup_dcookie": 18, "syslog": 116,
        "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171, "sethostname": 161,
        "setdomainname": 162, "chroot": 51, "fanotify_init": 262, "mbind": 235, "migrate_pages": 238,
        "move_pages": 239, "set_mempolicy": 237, "io_uring_setup": 425, "io_uring_enter": 426,
        "io_uring_register": 427, "personality": 92, "vhangup": 58, "kcmp": 272, "nfsservctl": 42,
        "pidfd_getfd": 438, "process_madvise": 440,
        "clone": 220, "clone3": 435, "execve": 221, "execveat": 281,
    }),
}
KERNEL_DENIED = tuple(n for n in ARCHES["x86_64"][1] if n not in ("clone", "clone3", "fork", "vfork", "execve",
                                                                  "execveat"))


class UnknownArchitecture(RuntimeError):
    """No syscall table for this machine: the sandbox would run without its filter, so it does not run."""


def machine() -> str:
    arch = platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    if arch not in ARCHES:
        raise UnknownArchitecture(f"no seccomp syscall table for {arch!r} (known: {', '.join(ARCHES)})")
    return arch


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
    return code, jt, jf, k


def _errno(e: int) -> tuple[int, int, int, int]:
    return _ins(_RET_K, _ERRNO | e)


def _compile(arch: str, denied: list[str], clone_rule: tuple[int, int] | None, clone3_errno: int | None) -> bytes:
    """arch check; x32 refused; each denied syscall -> EPERM; clone with any flag of `clone_rule[0]` set (or,
    with clone_rule[1], without CLONE_THREAD) -> EPERM; clone3 -> `clone3_errno`; everything else allowed."""
    audit_arch, table = ARCHES[arch]
    prog = [
        _ins(_LD_W_ABS, _ARCH),
        _ins(_JEQ_K, audit_arch, 1, 0),
        _errno(EPERM),  # another ABI than the one this table describes
        _ins(_LD_W_ABS, _NR),
    ]
    if arch == "x86_64":
        prog += [_ins(_JGE_K, X32_BIT, 0, 1), _errno(EPERM)]
    for name in denied:
        if name in table:
            prog += [_ins(_JEQ_K, table[name], 0, 1), _errno(EPERM)]
    if clone3_errno is not None:
        prog += [_ins(_JEQ_K, table["clone3"], 0, 1), _errno(clone3_errno)]
    if clone_rule is not None:
        flags, need_thread = clone_rule
        # if nr == clone: load flags; refuse when any of `flags` is set, or (need_thread) CLONE_THREAD is not
        body = [_ins(_LD_W_ABS, _ARG0), _ins(_JSET_K, flags, 0, 1), _errno(EPERM)]
        if need_thread:
            body += [_ins(_JSET_K, CLONE_THREAD, 1, 0), _errno(EPERM)]
        body += [_ins(_RET_K, ALLOW)]
        prog += [_ins(_JEQ_K, table["clone"], 0, len(body))] + body
    prog.append(_ins(_RET_K, ALLOW))
    assert len(prog) < 4096
    return b"".join(struct.pack("<HBBI", *ins) for ins in prog)


def kernel_filter(arch: str | None = None) -> bytes:
    """For bubblewrap's --seccomp: the kernel surface nobody in a sandbox needs."""
    return _compile(arch or machine(), list(KERNEL_DENIED), (CLONE_NEW, False), ENOSYS)


def untrusted_filter(allow_processes: bool, arch: str | None = None) -> bytes:
    """For the worker to add before untrusted code runs: no exec; no new process unless `allow_processes`."""
    denied = ["execve", "execveat"] + ([] if allow_processes else ["fork", "vfork"])
    return _compile(arch or machine(), denied, None if allow_processes else (0, True), ENOSYS)
