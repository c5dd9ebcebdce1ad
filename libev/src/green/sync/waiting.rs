//! The wait every primitive here makes: join its list, park until served.

use crate::green::hub::can_switch;
use crate::green::wait::{WaitList, Waiter, wait_on};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// Joins `list` and waits until served or `timeout` passes; returns the
/// waiter if it was served (its mailbox holds what was handed over).
/// Returns `None` at once for a zero timeout, and where no green call
/// waits (see [`can_switch`]). A kill or timeout unwinds from here as
/// from [`wait_on`], leaving the list as if this had never waited.
pub(super) fn wait_in<T>(
    list: &WaitList<T>,
    timeout: Option<Duration>,
    what: &dyn fmt::Display,
) -> Option<Rc<Waiter<T>>> {
    if timeout.is_some_and(|t| t.is_zero()) || !can_switch() {
        return None;
    }
    let w = Waiter::new();
    list.push(w.clone());
    wait_on(list, &w, timeout, what).then_some(w)
}

/// `Debug` for a lock: its value if it could be locked now.
pub(super) fn fmt_lock<T: ?Sized + fmt::Debug>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    value: Option<&T>,
) -> fmt::Result {
    let mut d = f.debug_struct(name);
    match value {
        Some(v) => d.field("value", &v),
        None => d.field("value", &format_args!("<locked>")),
    };
    d.finish()
}
