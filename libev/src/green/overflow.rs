//! Reports a greenlet's stack overflow as std reports a thread's.
//!
//! A greenlet that overflows its stack touches the guard page below it
//! and the kernel sends `SIGSEGV`. std's own handler only knows thread
//! stacks, so without this the process would die with a bare segfault.
//! [`install`] puts a handler in front of whatever handled the signal
//! before (std's, a sanitizer's, the default): a fault inside a greenlet
//! guard page (see `stack.rs`'s slab records) prints
//! `greenlet N ('name') has overflowed its stack` and aborts, as std does
//! for threads; any other fault goes to the previous handler.
//!
//! The handler runs on the thread's alternate signal stack, since the
//! faulting stack has no room left. std gives its threads one; a hub
//! created on a thread without one (a thread started from C) installs
//! one with [`ensure_altstack`], removed again when the hub goes.

use super::stack;
use std::ffi::c_int;
use std::mem::MaybeUninit;
use std::ptr;
use std::sync::Once;
use std::sync::OnceLock;

/// What handled `SIGSEGV` and `SIGBUS` before us.
static PREVIOUS: [OnceLock<Previous>; 2] = [OnceLock::new(), OnceLock::new()];

/// The running greenlet's id and name on the calling thread (the hub's
/// answer), for the report. Must only read memory.
pub(crate) type Describe = fn() -> Option<(u64, Option<&'static str>)>;

static DESCRIBE: OnceLock<Describe> = OnceLock::new();

/// A saved `sigaction` (plain data).
struct Previous(libc::sigaction);

// SAFETY: a sigaction is plain data (a handler address, flags and a
// signal mask); it is written once, before the handler that reads it is
// installed, and only read afterwards.
unsafe impl Sync for Previous {}
// SAFETY: as above.
unsafe impl Send for Previous {}

const SIGNALS: [c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Installs the handler, once per process; `describe` names the greenlet
/// that overflowed.
pub(crate) fn install(describe: Describe) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = DESCRIBE.set(describe);
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: an all-zero sigaction is a valid value to fill in.
            let mut new: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
            new.sa_sigaction = on_fault as *const () as usize;
            new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            // SAFETY: an all-zero sigaction, filled in by the kernel below.
            let mut old: libc::sigaction = unsafe { MaybeUninit::zeroed().assume_init() };
            // SAFETY: reads the current action into `old`; the mask is a
            // valid sigset_t to empty.
            unsafe {
                libc::sigemptyset(&mut new.sa_mask);
                if libc::sigaction(sig, ptr::null(), &mut old) != 0 {
                    continue;
                }
            }
            // Saved before the handler that reads it goes in.
            let _ = PREVIOUS[i].set(Previous(old));
            // SAFETY: installs a handler that only reads immutable data and
            // calls async-signal-safe functions (see `on_fault`).
            unsafe { libc::sigaction(sig, &new, ptr::null_mut()) };
        }
    });
}

/// Size of an alternate signal stack installed here (plus its guard
/// page): far more than a signal frame takes even with the largest vector
/// state, as std's is.
fn altstack_size() -> usize {
    libc::SIGSTKSZ.max(64 * 1024) + stack::page_size()
}

/// An alternate signal stack this module installed for its thread.
pub(crate) struct AltStack {
    mem: *mut libc::c_void,
    len: usize,
}

/// Gives the calling thread an alternate signal stack if it has none;
/// returns it, to be dropped when the thread's hub goes.
pub(crate) fn ensure_altstack() -> Option<AltStack> {
    // SAFETY: an all-zero stack_t, filled in by the kernel.
    let mut cur: libc::stack_t = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: queries the current alternate stack into `cur`.
    if unsafe { libc::sigaltstack(ptr::null(), &mut cur) } != 0 || cur.ss_flags & libc::SS_DISABLE == 0 {
        return None;
    }
    let len = altstack_size();
    let page = stack::page_size();
    // SAFETY: a fresh anonymous mapping; no existing memory is affected.
    let mem = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if mem == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: the lowest page of our mapping becomes a guard (an overflow
    // of the handler itself faults instead of running into other memory);
    // the rest is the signal stack.
    let ok = unsafe {
        libc::mprotect(mem, page, libc::PROT_NONE);
        let st = libc::stack_t { ss_sp: mem.cast::<u8>().add(page).cast(), ss_flags: 0, ss_size: len - page };
        libc::sigaltstack(&st, ptr::null_mut()) == 0
    };
    if !ok {
        // SAFETY: our own mapping, never installed.
        unsafe { libc::munmap(mem, len) };
        return None;
    }
    Some(AltStack { mem, len })
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: an all-zero stack_t with SS_DISABLE turns the alternate
        // stack off; only then is its memory unmapped (dropped on the
        // thread that installed it, outside any signal handler).
        unsafe {
            let mut off: libc::stack_t = MaybeUninit::zeroed().assume_init();
            off.ss_flags = libc::SS_DISABLE;
            libc::sigaltstack(&off, ptr::null_mut());
            libc::munmap(self.mem, self.len);
        }
    }
}

/// The handler: report an overflow of a greenlet stack, else pass the
/// fault on to the previous handler.
extern "C" fn on_fault(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    if stack::is_guard_page(addr) {
        report_overflow();
        // SAFETY: async-signal-safe; never returns.
        unsafe { libc::abort() };
    }
    let i = if sig == libc::SIGSEGV { 0 } else { 1 };
    match PREVIOUS[i].get() {
        Some(Previous(prev)) if prev.sa_sigaction != libc::SIG_DFL && prev.sa_sigaction != libc::SIG_IGN => {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous handler, installed with SA_SIGINFO,
                // takes these three arguments.
                let f: extern "C" fn(c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(prev.sa_sigaction) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a plain handler takes the signal number.
                let f: extern "C" fn(c_int) = unsafe { std::mem::transmute(prev.sa_sigaction) };
                f(sig);
            }
        }
        _ => {
            // The default action: restore it and return, so the faulting
            // instruction runs again and the kernel kills the process with
            // the original signal (what std's handler does too).
            // SAFETY: async-signal-safe calls on a zeroed sigaction.
            unsafe {
                let mut dfl: libc::sigaction = MaybeUninit::zeroed().assume_init();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, ptr::null_mut());
            }
        }
    }
}

/// Writes std's stack overflow message, naming the running greenlet.
/// Async-signal-safe: formats into a stack buffer, writes with write(2).
fn report_overflow() {
    let mut buf = Buf { bytes: [0; 512], len: 0 };
    buf.push(b"\ngreenlet ");
    match DESCRIBE.get().and_then(|describe| describe()) {
        Some((id, name)) => {
            buf.push_u64(id);
            if let Some(name) = name {
                buf.push(b" '");
                buf.push(name.as_bytes());
                buf.push(b"'");
            }
        }
        None => buf.push(b"(unknown)"),
    }
    buf.push(b" has overflowed its stack\nfatal runtime error: stack overflow, aborting\n");
    // SAFETY: writes our initialised buffer to stderr.
    unsafe { libc::write(libc::STDERR_FILENO, buf.bytes.as_ptr().cast(), buf.len) };
}

/// A fixed buffer that truncates what does not fit.
struct Buf {
    bytes: [u8; 512],
    len: usize,
}

impl Buf {
    fn push(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    fn push_u64(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_buffer_formats_numbers_and_truncates() {
        let mut b = Buf { bytes: [0; 512], len: 0 };
        b.push(b"id ");
        b.push_u64(0);
        b.push(b" ");
        b.push_u64(u64::MAX);
        assert_eq!(&b.bytes[..b.len], b"id 0 18446744073709551615");
        b.push(&[b'x'; 600]);
        assert_eq!(b.len, 512);
    }
}
