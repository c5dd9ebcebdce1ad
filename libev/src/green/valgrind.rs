//! Tells valgrind where greenlet stacks are, so it reads a switch between
//! them as a stack switch.
//!
//! Without this, valgrind tells a switch from a large stack frame only by
//! how far the stack pointer jumps (`--max-stackframe`, 2 MB). Stacks
//! carved from slabs lie closer than that to each other and to thread
//! stacks, so after a switch it would take live memory of the other stack
//! (a thread's TLS, say) for freed stack and report valid accesses as
//! invalid ones.
//!
//! The request is valgrind's client-request protocol: a fixed no-op
//! instruction sequence that valgrind's JIT recognises. On a real CPU it
//! costs a few cycles and changes nothing; it is made once per stack, when
//! a slab is mapped. Only x86-64 is wired up; elsewhere this does nothing.

/// `VG_USERREQ__STACK_REGISTER` (valgrind.h).
#[cfg(all(target_arch = "x86_64", any(target_os = "linux", target_os = "android")))]
const STACK_REGISTER: usize = 0x1501;

/// Registers `[start, end)` as a stack; without valgrind, does nothing.
/// Stacks stay registered for the process's life, as slabs stay mapped.
#[cfg(all(target_arch = "x86_64", any(target_os = "linux", target_os = "android")))]
pub(crate) fn register_stack(start: *const u8, end: *const u8) {
    let args: [usize; 6] = [STACK_REGISTER, start as usize, end as usize, 0, 0, 0];
    // SAFETY: valgrind's "special instruction preamble" (four rotates of
    // rdi summing to 128 bits, which leave it unchanged) followed by
    // `xchg rbx, rbx`, a no-op: on a real CPU the sequence changes only the
    // flags. Under valgrind it reads the six words at `args` (alive for the
    // whole statement) and writes its answer to rdx, declared clobbered.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            // The stack id valgrind answers is not needed: stacks are
            // never deregistered.
            inout("rdx") 0usize => _,
            in("rax") args.as_ptr(),
            inout("rdi") 0usize => _,
            options(nostack),
        );
    }
}

/// Registers `[start, end)` as a stack; a no-op on this target.
#[cfg(not(all(target_arch = "x86_64", any(target_os = "linux", target_os = "android"))))]
pub(crate) fn register_stack(_start: *const u8, _end: *const u8) {}
