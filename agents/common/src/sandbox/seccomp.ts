// A small seccomp deny-list for the bubblewrap sandbox (bwrap --seccomp FD), in the spirit of
// Docker's default profile: kernel attack surface a test command never needs (bpf, io_uring,
// keyrings, perf, userfaultfd, namespace and mount syscalls, module/kexec/clock/swap/reboot).
// Classic BPF built by hand; x86_64 only (other architectures run without the filter).

const AUDIT_ARCH_X86_64 = 0xc000003e;
const X32_SYSCALL_BIT = 0x40000000;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const EPERM = 1;
const ENOSYS = 38;

/** x86_64 syscall numbers refused with EPERM. */
export const DENIED_EPERM: Readonly<Record<string, number>> = {
  syslog: 103, uselib: 134, ustat: 136, sysfs: 139, vhangup: 153, pivot_root: 155, _sysctl: 156,
  adjtimex: 159, acct: 163, settimeofday: 164, mount: 165, umount2: 166, swapon: 167, swapoff: 168, reboot: 169,
  iopl: 172, ioperm: 173, create_module: 174, init_module: 175, delete_module: 176, get_kernel_syms: 177,
  query_module: 178, quotactl: 179, nfsservctl: 180, lookup_dcookie: 212, clock_settime: 227, kexec_load: 246,
  add_key: 248, request_key: 249, keyctl: 250, unshare: 272, perf_event_open: 298, name_to_handle_at: 303,
  open_by_handle_at: 304, clock_adjtime: 305, setns: 308, finit_module: 313, kexec_file_load: 320, bpf: 321,
  userfaultfd: 323, open_tree: 428, move_mount: 429, fsopen: 430, fsconfig: 431, fsmount: 432, fspick: 433,
  mount_setattr: 442,
};
/** Refused with ENOSYS, so runtimes (libuv) fall back as on a kernel without them. */
export const DENIED_ENOSYS: Readonly<Record<string, number>> = { io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 };

function insn(code: number, jt: number, jf: number, k: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16LE(code, 0);
  b.writeUInt8(jt, 2);
  b.writeUInt8(jf, 3);
  b.writeUInt32LE(k >>> 0, 4);
  return b;
}
const LD_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const JEQ = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const JGE = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const RET = 0x06; // BPF_RET | BPF_K

/** The filter as the raw `struct sock_filter[]` bwrap reads from its --seccomp fd, or null off x86_64. */
export function sandboxSeccompFilter(arch: string = process.arch): Buffer | null {
  if (arch !== 'x64') return null;
  const eperm = Object.values(DENIED_EPERM);
  const enosys = Object.values(DENIED_ENOSYS);
  const checks = [...eperm.map((nr) => ({ nr, ret: 'eperm' as const })), ...enosys.map((nr) => ({ nr, ret: 'enosys' as const }))];
  const n = checks.length;
  // Layout: [0] ld arch, [1] jeq x86_64, [2] ret EPERM, [3] ld nr, [4] jge x32, [5..5+n) checks,
  // [5+n] ret ALLOW, [6+n] ret EPERM, [7+n] ret ENOSYS. Jump offsets count from the next insn.
  const prog = [
    insn(LD_ABS, 0, 0, 4),
    insn(JEQ, 1, 0, AUDIT_ARCH_X86_64),
    insn(RET, 0, 0, RET_ERRNO | EPERM),
    insn(LD_ABS, 0, 0, 0),
    insn(JGE, n + 1, 0, X32_SYSCALL_BIT),
    ...checks.map((c, i) => insn(JEQ, c.ret === 'eperm' ? n - i : n - i + 1, 0, c.nr)),
    insn(RET, 0, 0, RET_ALLOW),
    insn(RET, 0, 0, RET_ERRNO | EPERM),
    insn(RET, 0, 0, RET_ERRNO | ENOSYS),
  ];
  return Buffer.concat(prog);
}
