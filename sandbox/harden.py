"""Layer 3, inside a freshly forked worker: take away everything a check does not need before it runs.

In order: own session; only the two pipe descriptors kept (as 3 and 4), stdio on /dev/null; cwd in a private
scratch directory; rlimits (address space, file size 0, no core dumps, few descriptors); an unprivileged uid
when started as root; then no new processes (RLIMIT_NPROC 0), no_new_privs and a seccomp filter that refuses
process creation, exec, opening files, sockets, signals, ptrace and file-system changes. What cannot be applied
is returned as a warning for the parent to log, never skipped silently.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import resource
from typing import Any

NOBODY = 65534
TASK_FD, REPLY_FD = 3, 4
_PR_SET_NO_NEW_PRIVS = 38

# Each refused with EPERM (clone3 with ENOSYS, so a libc falls back to clone, which is refused too).
DENIED_SYSCALLS = (
    "clone", "fork", "vfork", "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
    "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open", "pidfd_send_signal",
    "pidfd_getfd", "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "open", "openat", "creat", "open_by_handle_at", "name_to_handle_at", "memfd_create",
    "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir", "link", "linkat",
    "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "chown", "fchown", "lchown", "fchownat",
    "truncate", "ftruncate", "mknod", "mknodat", "utimensat", "utimes", "futimesat", "chdir", "fchdir",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "bpf", "perf_event_open", "keyctl",
    "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "init_module", "finit_module", "delete_module", "kexec_load", "reboot", "swapon", "swapoff", "acct",
    "personality", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
)


def build_seccomp_filter() -> tuple[Any, list[str]]:
    """The filter object (built once in the warm parent) and warnings; (None, [why]) without pyseccomp."""
    try:
        import pyseccomp
    except ImportError as exc:
        return None, [f"seccomp layer off: pyseccomp unavailable ({exc})"]
    warnings = []
    try:
        flt = pyseccomp.SyscallFilter(defaction=pyseccomp.ALLOW)
        for name in DENIED_SYSCALLS:
            try:
                flt.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
            except Exception:  # a syscall this kernel/arch lacks cannot be used either
                continue
        for name, code in (("clone3", errno.ENOSYS), ("openat2", errno.ENOSYS)):
            try:
                flt.add_rule(pyseccomp.ERRNO(code), name)
            except Exception:
                warnings.append(f"seccomp cannot filter {name}")
    except Exception as exc:
        return None, [f"seccomp layer off: cannot build the filter ({exc})"]
    return flt, warnings


def harden(task_fd: int, reply_fd: int, scratch: str, memory_mb: int, seccomp_filter: Any) -> list[str]:
    """Apply layer 3 to the calling (forked) process; return warnings about anything not applied."""
    warnings: list[str] = []
    os.setsid()
    high_task = fcntl.fcntl(task_fd, fcntl.F_DUPFD_CLOEXEC, 100)  # out of the way before renumbering
    high_reply = fcntl.fcntl(reply_fd, fcntl.F_DUPFD_CLOEXEC, 100)
    os.dup2(high_task, TASK_FD, inheritable=False)
    os.dup2(high_reply, REPLY_FD, inheritable=False)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.closerange(REPLY_FD + 1, 1 << 16)
    os.chdir(scratch)
    memory = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))
    if os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    if ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        warnings.append(f"no_new_privs not set (errno {ctypes.get_errno()})")
    if seccomp_filter is not None:
        try:
            seccomp_filter.load()
        except Exception as exc:
            warnings.append(f"seccomp filter not loaded: {exc}")
    return warnings


def set_cpu_budget(seconds: float) -> None:
    """Soft RLIMIT_CPU at the CPU used so far plus `seconds`: SIGXCPU backs up the parent's deadline."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(usage.ru_utime + usage.ru_stime + seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (soft, resource.RLIM_INFINITY))
