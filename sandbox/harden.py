"""Layer 3: the jail around every process that runs a program.

The warm parent locks itself in once, after its warm-up: no_new_privs, a working directory that is empty and
deleted, and a seccomp filter that refuses exec, opening files, sockets, ptrace and file-system changes (it keeps
only what it needs to fork children, drop their privileges and kill them). Each forked child then adds, before
the program runs: its own session; only the reply descriptor kept (as 3), stdio on /dev/null; rlimits (address
space, CPU, file size 0, no core dumps, few descriptors); an unprivileged uid when started as root; no new
processes or threads (RLIMIT_NPROC 0); and a second, short filter against process creation, signals and
changes of uid. What cannot be applied is a warning for the caller to log, never skipped silently.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import resource
from typing import Any

NOBODY = 65534
REPLY_FD = 3
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

# Each refused with EPERM (clone3 with ENOSYS, so a libc falls back to clone, which is refused too).
# fmt: off
DENIED_SYSCALLS = (
    "clone", "fork", "vfork", "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev", "kill",
    "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal", "pidfd_getfd",
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "open", "openat", "creat",
    "open_by_handle_at", "name_to_handle_at", "memfd_create", "unlink", "unlinkat", "rename", "renameat",
    "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat", "symlink", "symlinkat", "chmod", "fchmod",
    "fchmodat", "chown", "fchown", "lchown", "fchownat", "truncate", "ftruncate", "mknod", "mknodat", "utimensat",
    "utimes", "futimesat", "chdir", "fchdir", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf",
    "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "init_module", "finit_module", "delete_module", "kexec_load", "reboot", "swapon", "swapoff",
    "acct", "personality", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
)
# fmt: on
# Seccomp filters stack and are inherited, and loading one costs a BPF compile: so the warm parent loads all of
# DENIED_SYSCALLS but what it needs to fork, drop privileges in and kill its children, once; each child then adds
# only the short CHILD_DENIED. (RLIMIT_NPROC 0 refuses a child's clone before seccomp does.)
PARENT_NEEDS = frozenset({"clone", "kill", "setgroups", "setresuid", "setresgid"})
# fmt: off
CHILD_DENIED = (
    "clone", "fork", "vfork", "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open",
    "pidfd_send_signal", "setgroups", "setresuid", "setresgid",
)
# fmt: on


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _bpf(denied: tuple[str, ...], flt_module: Any) -> bytes:
    flt = flt_module.SyscallFilter(defaction=flt_module.ALLOW)
    for name in denied:
        try:
            flt.add_rule(flt_module.ERRNO(errno.EPERM), name)
        except Exception:  # a syscall this kernel/arch lacks cannot be used either
            continue
    flt.add_rule(flt_module.ERRNO(errno.ENOSYS), "clone3")  # so a libc falls back to clone, which is refused
    import tempfile  # here, in the caller: the warm parent never imports it

    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        return out.read()


@functools.cache
def seccomp_programs() -> tuple[bytes, bytes] | str:
    """The warm parent's and the children's filters as BPF, built with libseccomp by the caller (so the warm
    parent, whose every mapping each fork copies, never loads libseccomp); or why they cannot be built."""
    try:
        import pyseccomp
    except (ImportError, RuntimeError) as exc:
        return f"seccomp layer off: pyseccomp unavailable ({exc})"
    try:
        parent = tuple(name for name in DENIED_SYSCALLS if name not in PARENT_NEEDS)
        return _bpf(parent, pyseccomp), _bpf(CHILD_DENIED, pyseccomp)
    except Exception as exc:
        return f"seccomp layer off: cannot build the filter ({exc})"


def _fprog(program: bytes) -> _SockFprog:
    """The BPF bytes as the `struct sock_fprog` prctl takes (the struct keeps its filter array alive)."""
    count = len(program) // ctypes.sizeof(_SockFilter)
    return _SockFprog(count, (_SockFilter * count).from_buffer_copy(program))


class Jail:
    """The warm parent's half of layer 3, applied once, and what each child needs to lock itself in cheaply."""

    def __init__(self, programs: tuple[bytes, bytes] | None) -> None:
        """Call in the warm parent after its warm-up: from here on it cannot open a file or exec either."""
        self.warnings: list[str] = []
        self.devnull = os.open(os.devnull, os.O_RDWR)
        empty = f"/tmp/sandbox-empty-{os.urandom(8).hex()}"  # not tempfile: it would map compression libraries
        os.mkdir(empty, 0o700)
        os.chdir(empty)  # children inherit a working directory that is empty, deleted, and not theirs
        os.rmdir(empty)
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._child_filter = None
        if self._libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            self.warnings.append(f"no_new_privs not set (errno {ctypes.get_errno()})")
        if programs is not None:
            parent, child = programs
            if not self._install(_fprog(parent)):
                self.warnings.append(f"seccomp filter not loaded (errno {ctypes.get_errno()})")
            else:
                self._child_filter = _fprog(child)

    def _install(self, fprog: _SockFprog) -> bool:
        return self._libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) == 0

    def fork(self) -> int:
        """libc's fork, not os.fork: os.fork runs CPython's at-fork machinery (thread-state re-initialisation,
        `random`'s reseed, ...) in every child, a fifth of a simple check's cost here. The warm parent never
        starts a thread and its children never return into Python code of the parent, so nothing that
        machinery repairs is ever broken."""
        pid = self._libc.fork()
        if pid < 0:
            raise OSError(ctypes.get_errno(), "fork failed")
        return pid

    def enter(self, reply_fd: int, memory_mb: int, cpu_seconds: float) -> list[str]:
        """Apply the child's half of layer 3 to the calling (forked) process; return warnings."""
        warnings: list[str] = []
        os.setsid()
        os.dup2(reply_fd, REPLY_FD, inheritable=False)
        for fd in (0, 1, 2):
            os.dup2(self.devnull, fd)
        os.closerange(REPLY_FD + 1, 1 << 16)
        memory = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (int(cpu_seconds) + 1, int(cpu_seconds) + 2))
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))
        if os.geteuid() == 0:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        if self._child_filter is not None and not self._install(self._child_filter):
            warnings.append(f"child seccomp filter not loaded (errno {ctypes.get_errno()})")
        return warnings
