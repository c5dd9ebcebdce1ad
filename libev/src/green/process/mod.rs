//! Child processes for greenlets (gevent's `gevent.subprocess`):
//! `std::process` with green pipes and green waits.
//!
//! [`Command`] and [`Child`] have std's names, arguments and results
//! (`Command::new(..).arg(..).stdout(Stdio::piped()).spawn()`, the
//! `stdin` / `stdout` / `stderr` fields, [`wait`](Child::wait),
//! [`try_wait`](Child::try_wait), [`wait_with_output`](Child::wait_with_output),
//! [`kill`](Child::kill)), so swapping the `use` line moves blocking code
//! onto green threads. Reading or writing a child's pipes and waiting for
//! its exit park only the calling greenlet; the hub runs the others
//! meanwhile. [`ExitStatus`], [`Output`] and [`Stdio`] are std's own.
//!
//! ```
//! use libev::green::{self, process::{Command, Stdio}};
//! use std::io::{BufRead, BufReader};
//!
//! // Two children at once, each read by its own greenlet.
//! let readers: Vec<_> = ["one", "two"]
//!     .into_iter()
//!     .map(|word| {
//!         green::spawn(move || -> std::io::Result<String> {
//!             let mut child = Command::new("echo").arg(word).stdout(Stdio::piped()).spawn()?;
//!             let mut line = String::new();
//!             BufReader::new(child.stdout.take().unwrap()).read_line(&mut line)?;
//!             assert!(child.wait()?.success());
//!             Ok(line)
//!         })
//!     })
//!     .collect();
//! let lines: Vec<String> = green::joinall(readers).into_iter().map(|r| r.unwrap().unwrap()).collect();
//! assert_eq!(lines, ["one\n", "two\n"]);
//! ```
//!
//! # Where this differs from std
//!
//! - **Threads.** A [`Child`] and its pipes belong to the thread (the hub)
//!   that spawned it and are not `Send`.
//! - **Timeouts** come from the green tools: [`with_timeout`](super::with_timeout)
//!   or a [`Timeout`](super::Timeout) around `wait` (gevent's
//!   `wait(timeout=)`), then [`kill`](Child::kill) and `wait` again.
//! - **Unix-specific options** (`uid`, `process_group`, `pre_exec`, ...)
//!   are std's `CommandExt`: reach them through [`Command::as_std_mut`].
//!   [`Command::output`] pipes the output streams, and nulls stdin, unless
//!   they were set through this type's own [`stdin`](Command::stdin),
//!   [`stdout`](Command::stdout) and [`stderr`](Command::stderr) (std
//!   gives no way to ask a `std::process::Command` what was set).
//! - **A child's pipes handed on** (to another child, as a [`Stdio`], or
//!   as an fd) are made blocking again, as programs expect of their
//!   standard streams.
//! - **A dropped child is reaped.** std leaves a child whose handle is
//!   dropped unwaited as a zombie once it exits; here the hub reaps it in
//!   the background (see below). Neither kills it.
//!
//! # How a child's exit is waited for
//!
//! | hub | how | `wait` parks on |
//! | --- | --- | --- |
//! | on libev's default loop (the main thread's hub) | libev's SIGCHLD handler reaps the child and hands its status to a [`Child`](crate::Child) watcher started right after the spawn, before the hub runs again | the watcher |
//! | any other, on Linux 5.3 or later | `pidfd_open`, then `waitid(P_PIDFD)` on this child only | the pidfd becoming readable |
//! | any other, without pidfds (older kernels, other Unixes) | `waitpid(pid, WNOHANG)` on this child only | a sleep between polls, from 1 ms doubling up to 50 ms |
//!
//! So it works on every hub. [`kill`](Child::kill) cannot hit another
//! process that reused the pid: it goes through the pidfd, and on the
//! default loop's hub the child is known unreaped until its watcher has
//! the status (libev calls the watcher in the loop iteration that reaps
//! it, before any greenlet runs again). Only the polling fallback signals
//! by pid.
//!
//! # libev's SIGCHLD handling, and code that waits for children itself
//!
//! libev's default loop, once it exists, handles SIGCHLD for the whole
//! process: whenever that loop runs, it reaps **every** child of the
//! process with `waitpid(-1, ..)`, children of other threads included, and
//! gives each status only to its own [`Child`](crate::Child) watchers.
//! Hence, while a hub runs on the default loop (a green `main`):
//!
//! - `std::process::Child::wait`, a plain `waitpid`, or any library doing
//!   so, is likely to fail with `ECHILD`: the status is gone. Spawn such
//!   children through this module, or watch them with a
//!   [`Child`](crate::Child) watcher on the default loop, or keep green
//!   code off the main thread (hubs on other threads run loops of their
//!   own, which never reap anything).
//! - Children that hubs on other threads spawn through this module are
//!   reaped by the default loop too. The default loop's hub starts a
//!   recorder as it is created: from then on it copies every status libev
//!   reaps into a process-wide table, where the other hubs' children find
//!   theirs. (A child reaped by a default loop that runs without a hub,
//!   driven by code of your own, fails its `wait` with an error that says
//!   so.)
//!
//! This module itself never reaps a child it did not spawn (it waits on
//! each of its children by pidfd or pid, never with `waitpid(-1)`), so on
//! hubs off the default loop, code that waits for its own children keeps
//! working beside it.
//!
//! # Children that outlive their handle
//!
//! A [`Child`] dropped while its process runs does not kill it (as std).
//! Its exit is reaped in the background, so it does not stay a zombie: on
//! the default loop libev reaps it; elsewhere an io watcher on its pidfd
//! (or a polling timer) on the hub reaps it when it exits. That watcher
//! does not keep the hub running: if the thread ends first, a child still
//! running is left to the process, as std leaves every child.
//!
//! # gevent's names
//!
//! | gevent | here |
//! | --- | --- |
//! | `Popen(args, stdin=PIPE, ...)` | [`Command::spawn`] |
//! | `Popen.wait()`, `wait(timeout)`, `poll()`, `kill()` | [`Child::wait`], `wait` in [`with_timeout`](super::with_timeout), [`Child::try_wait`], [`Child::kill`] |
//! | `Popen.communicate()` | [`Child::wait_with_output`] (write stdin first, from another greenlet if it is large) |
//! | `check_output`, `call`, `run(capture_output=True)` | [`Command::output`], [`Command::status`] |
//! | `Popen.pid`, `.stdin`, `.stdout`, `.stderr` | [`Child::id`], [`Child::stdin`], [`Child::stdout`], [`Child::stderr`] |

mod exit;
mod pipe;
mod reaped;

pub(crate) use reaped::record_for_other_hubs;

pub use pipe::{ChildStderr, ChildStdin, ChildStdout};
pub use std::process::{ExitStatus, Output, Stdio};

use crate::green::hub_loop;
use exit::Exit;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;
use std::process::{CommandArgs, CommandEnvs};

/// A process builder (std's [`Command`](std::process::Command)) whose
/// children are green: see the [module docs](self).
///
/// By default the child inherits this process's standard streams for
/// [`spawn`](Command::spawn) and [`status`](Command::status), and has its
/// output captured (stdin null) for [`output`](Command::output).
///
/// ```
/// use libev::green::process::Command;
///
/// let status = Command::new("sh").args(["-c", "exit 3"]).status()?;
/// assert_eq!(status.code(), Some(3));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Command {
    inner: std::process::Command,
    /// Which of stdin, stdout and stderr were set through this type.
    set: [bool; 3],
}

impl Command {
    /// A builder for running `program`, found in `PATH` unless it holds a
    /// `/`, with no arguments, this process's environment and working
    /// directory, and inherited standard streams (std's
    /// [`Command::new`](std::process::Command::new)).
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// assert!(Command::new("true").status()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new<S: AsRef<OsStr>>(program: S) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let out = Command::new("echo").arg("-n").arg("hi").output()?;
    /// assert_eq!(out.stdout, b"hi");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn arg<S: AsRef<OsStr>>(&mut self, arg: S) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Adds arguments.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let out = Command::new("printf").args(["%s-%s", "a", "b"]).output()?;
    /// assert_eq!(out.stdout, b"a-b");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Sets an environment variable for the child.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let out = Command::new("sh").args(["-c", "printf %s \"$FRUIT\""]).env("FRUIT", "banana").output()?;
    /// assert_eq!(out.stdout, b"banana");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn env<K, V>(&mut self, key: K, val: V) -> &mut Command
    where
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.env(key, val);
        self
    }

    /// Sets environment variables for the child.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let out = Command::new("sh").args(["-c", "printf %s%s \"$A\" \"$B\""]).envs([("A", "1"), ("B", "2")]).output()?;
    /// assert_eq!(out.stdout, b"12");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let out = Command::new("sh").args(["-c", "printf %s \"${HOME-unset}\""]).env_remove("HOME").output()?;
    /// assert_eq!(out.stdout, b"unset");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn env_remove<K: AsRef<OsStr>>(&mut self, key: K) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Clears the child's environment (variables set afterwards stay).
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let out = Command::new("/usr/bin/env").env_clear().env("ONLY", "me").output()?;
    /// assert_eq!(out.stdout, b"ONLY=me\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// Sets the child's working directory.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let out = Command::new("pwd").current_dir("/").output()?;
    /// assert_eq!(out.stdout, b"/\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn current_dir<P: AsRef<Path>>(&mut self, dir: P) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// Sets the child's standard input: [`Stdio::piped`] gives
    /// [`Child::stdin`], a green [`ChildStdin`].
    ///
    /// ```
    /// use libev::green::process::{Command, Stdio};
    ///
    /// let mut child = Command::new("cat").stdin(Stdio::null()).stdout(Stdio::piped()).spawn()?;
    /// assert!(child.stdin.is_none());
    /// assert_eq!(child.wait_with_output()?.stdout, b"");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stdin<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdin(cfg);
        self.set[0] = true;
        self
    }

    /// Sets the child's standard output: [`Stdio::piped`] gives
    /// [`Child::stdout`], a green [`ChildStdout`].
    ///
    /// ```
    /// use libev::green::process::{Command, Stdio};
    ///
    /// // Not captured: output() leaves a stream set here alone.
    /// let out = Command::new("echo").arg("gone").stdout(Stdio::null()).output()?;
    /// assert!(out.stdout.is_empty());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stdout<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stdout(cfg);
        self.set[1] = true;
        self
    }

    /// Sets the child's standard error: [`Stdio::piped`] gives
    /// [`Child::stderr`], a green [`ChildStderr`].
    ///
    /// ```
    /// use libev::green::process::{Command, Stdio};
    ///
    /// let child = Command::new("sh").args(["-c", "echo err >&2"]).stderr(Stdio::piped()).spawn()?;
    /// assert_eq!(child.wait_with_output()?.stderr, b"err\n");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn stderr<T: Into<Stdio>>(&mut self, cfg: T) -> &mut Command {
        self.inner.stderr(cfg);
        self.set[2] = true;
        self
    }

    /// Starts the child and returns its handle, with green pipes for the
    /// streams set to [`Stdio::piped`]. Does not wait (the `fork`/`exec`
    /// itself, as in std, takes the thread for the moment it lasts).
    ///
    /// Fails as std's [`spawn`](std::process::Command::spawn) does:
    /// [`NotFound`](io::ErrorKind::NotFound) for a program that does not
    /// exist, and so on.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let mut child = Command::new("sleep").arg("0.01").spawn()?;
    /// assert!(child.wait()?.success());
    /// assert_eq!(Command::new("no-such-program-here").spawn().unwrap_err().kind(), std::io::ErrorKind::NotFound);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn(&mut self) -> io::Result<Child> {
        let before = exit::before_spawn(hub_loop());
        let mut child = self.inner.spawn()?;
        // Watched before anything runs this hub's loop, which on the
        // default loop could reap the child unseen.
        let exit = match before.spawned(child.id() as libc::pid_t) {
            Ok(exit) => exit,
            Err(e) => {
                // Nothing could watch it (no watcher, no pidfd): it must
                // not run on unseen. std's own handle reaps it here (on
                // the default loop libev may reap it first: then `wait`
                // fails, which changes nothing).
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Child {
            stdin: child.stdin.take().map(ChildStdin::from_std),
            stdout: child.stdout.take().map(ChildStdout::from_std),
            stderr: child.stderr.take().map(ChildStderr::from_std),
            exit,
        })
    }

    /// Runs the child to its end and collects its output (std's
    /// [`output`](std::process::Command::output)): stdout and stderr are
    /// captured, and stdin is null, unless set through this type's own
    /// methods. Both outputs are read at once, so a child filling either
    /// pipe cannot deadlock.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let out = Command::new("sh").args(["-c", "echo out; echo err >&2; exit 44"]).output()?;
    /// assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    /// assert_eq!(out.status.code(), Some(44));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn output(&mut self) -> io::Result<Output> {
        let unset = self.set.map(|s| !s);
        if unset[0] {
            self.inner.stdin(Stdio::null());
        }
        if unset[1] {
            self.inner.stdout(Stdio::piped());
        }
        if unset[2] {
            self.inner.stderr(Stdio::piped());
        }
        let child = self.spawn();
        // Back to what `spawn` does with streams not set: inherit them.
        if unset[0] {
            self.inner.stdin(Stdio::inherit());
        }
        if unset[1] {
            self.inner.stdout(Stdio::inherit());
        }
        if unset[2] {
            self.inner.stderr(Stdio::inherit());
        }
        child?.wait_with_output()
    }

    /// Runs the child to its end and returns its exit status (std's
    /// [`status`](std::process::Command::status)); streams not set are
    /// inherited.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// assert_eq!(Command::new("false").status()?.code(), Some(1));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// The program (std's [`get_program`](std::process::Command::get_program)).
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// assert_eq!(Command::new("ls").get_program(), "ls");
    /// ```
    pub fn get_program(&self) -> &OsStr {
        self.inner.get_program()
    }

    /// The arguments, without the program (std's
    /// [`get_args`](std::process::Command::get_args)).
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let mut cmd = Command::new("ls");
    /// cmd.args(["-l", "/"]);
    /// assert_eq!(cmd.get_args().collect::<Vec<_>>(), ["-l", "/"]);
    /// ```
    pub fn get_args(&self) -> CommandArgs<'_> {
        self.inner.get_args()
    }

    /// The environment changes made (std's
    /// [`get_envs`](std::process::Command::get_envs)): `None` for a
    /// variable removed.
    ///
    /// ```
    /// use libev::green::process::Command;
    /// use std::ffi::OsStr;
    ///
    /// let mut cmd = Command::new("ls");
    /// cmd.env("A", "1").env_remove("B");
    /// let envs: Vec<(&OsStr, Option<&OsStr>)> = cmd.get_envs().collect();
    /// assert_eq!(envs, [(OsStr::new("A"), Some(OsStr::new("1"))), (OsStr::new("B"), None)]);
    /// ```
    pub fn get_envs(&self) -> CommandEnvs<'_> {
        self.inner.get_envs()
    }

    /// The working directory set, if any (std's
    /// [`get_current_dir`](std::process::Command::get_current_dir)).
    ///
    /// ```
    /// use libev::green::process::Command;
    /// use std::path::Path;
    ///
    /// let mut cmd = Command::new("ls");
    /// assert_eq!(cmd.get_current_dir(), None);
    /// cmd.current_dir("/tmp");
    /// assert_eq!(cmd.get_current_dir(), Some(Path::new("/tmp")));
    /// ```
    pub fn get_current_dir(&self) -> Option<&Path> {
        self.inner.get_current_dir()
    }

    /// The std builder inside.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// assert_eq!(Command::new("ls").as_std().get_program(), "ls");
    /// ```
    pub fn as_std(&self) -> &std::process::Command {
        &self.inner
    }

    /// The std builder inside, for what only it has: std's Unix
    /// [`CommandExt`](std::os::unix::process::CommandExt) (`uid`, `gid`,
    /// `process_group`, `arg0`, `pre_exec`). Streams set through it count
    /// as unset for [`output`](Command::output).
    ///
    /// ```
    /// use libev::green::process::Command;
    /// use std::os::unix::process::CommandExt;
    ///
    /// let mut cmd = Command::new("sh");
    /// cmd.as_std_mut().arg0("renamed");
    /// let out = cmd.args(["-c", "printf %s \"$0\""]).output()?;
    /// assert_eq!(out.stdout, b"renamed");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }

    /// The std builder inside, for a blocking spawn.
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let mut std_cmd = Command::new("true").into_std();
    /// assert!(std_cmd.status()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn into_std(self) -> std::process::Command {
        self.inner
    }
}

/// A green builder from a std one; its streams count as unset for
/// [`output`](Command::output).
impl From<std::process::Command> for Command {
    fn from(inner: std::process::Command) -> Command {
        Command { inner, set: [false; 3] }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

/// A running or exited child process (std's
/// [`Child`](std::process::Child)), from [`Command::spawn`]: its pipes are
/// green, and waiting parks only the calling greenlet.
///
/// Dropping it neither kills nor waits for the process; unlike std's, it
/// does not leave a zombie: the hub reaps the process when it exits (see
/// the [module docs](self#children-that-outlive-their-handle)).
///
/// It stays on the thread that spawned it:
///
/// ```compile_fail
/// let child = libev::green::process::Command::new("true").spawn().unwrap();
/// std::thread::spawn(move || drop(child));
/// ```
pub struct Child {
    /// The parent's end of the child's standard input, if it was
    /// [`Stdio::piped`]; `take` it to write from another greenlet.
    pub stdin: Option<ChildStdin>,
    /// The parent's end of the child's standard output, if it was
    /// [`Stdio::piped`].
    pub stdout: Option<ChildStdout>,
    /// The parent's end of the child's standard error, if it was
    /// [`Stdio::piped`].
    pub stderr: Option<ChildStderr>,
    exit: Exit,
}

impl Child {
    /// The child's process id (std's [`id`](std::process::Child::id)).
    ///
    /// ```
    /// use libev::green::process::Command;
    ///
    /// let mut child = Command::new("true").spawn()?;
    /// assert!(child.id() > 0);
    /// child.wait()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn id(&self) -> u32 {
        self.exit.pid() as u32
    }

    /// Sends the child SIGKILL (std's [`kill`](std::process::Child::kill));
    /// `Ok` if it has already exited. Does not wait: [`wait`](Child::wait)
    /// then collects the status (signal 9).
    ///
    /// ```
    /// use libev::green::process::Command;
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// let mut child = Command::new("sleep").arg("60").spawn()?;
    /// child.kill()?;
    /// assert_eq!(child.wait()?.signal(), Some(libc::SIGKILL));
    /// child.kill()?; // already exited: still Ok
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        self.exit.kill()
    }

    /// Parks the calling greenlet until the child exits, and returns its
    /// status (std's [`wait`](std::process::Child::wait)); later calls
    /// return it again. Closes [`stdin`](Child::stdin) first, so that a
    /// child reading it sees its end.
    ///
    /// Fails with [`WouldBlock`](io::ErrorKind::WouldBlock) where green
    /// calls do not wait (in a destructor during an unwind), and when the
    /// status was taken by someone else (see the
    /// [module docs](self#libevs-sigchld-handling-and-code-that-waits-for-children-itself)).
    ///
    /// # Panics
    ///
    /// Unwinds if the greenlet is killed or its timeout expires meanwhile
    /// (the child keeps running; wait again or kill it); panics as other
    /// blocking green calls inside a raw watcher callback.
    ///
    /// ```
    /// use libev::green::{self, process::Command};
    /// use std::time::Duration;
    ///
    /// let mut child = Command::new("sleep").arg("60").spawn()?;
    /// // gevent's wait(timeout=): a timeout around the wait.
    /// assert!(green::with_timeout(Duration::from_millis(10), || child.wait()).is_err());
    /// child.kill()?;
    /// assert!(!child.wait()?.success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        self.exit.wait()
    }

    /// The child's status if it has exited, without waiting (std's
    /// [`try_wait`](std::process::Child::try_wait), gevent's `poll`);
    /// once it has, every call returns it.
    ///
    /// ```
    /// use libev::green::{self, process::Command};
    /// use std::time::Duration;
    ///
    /// let mut child = Command::new("sleep").arg("0.05").spawn()?;
    /// assert_eq!(child.try_wait()?, None);
    /// while child.try_wait()?.is_none() {
    ///     green::sleep(Duration::from_millis(5));
    /// }
    /// assert!(child.try_wait()?.unwrap().success());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.exit.try_wait()
    }

    /// Closes [`stdin`](Child::stdin), reads [`stdout`](Child::stdout) and
    /// [`stderr`](Child::stderr) to their end (both at once, so neither
    /// pipe can fill up and deadlock the child), and waits for the exit
    /// (std's [`wait_with_output`](std::process::Child::wait_with_output)).
    /// A stream that was not piped gives an empty buffer.
    ///
    /// Fails and panics as [`wait`](Child::wait) does, and with the first
    /// read error.
    ///
    /// ```
    /// use libev::green::{self, process::{Command, Stdio}};
    /// use std::io::Write;
    ///
    /// // gevent's communicate(input): another greenlet writes the input.
    /// let mut child = Command::new("sh")
    ///     .args(["-c", "printf pineapple >&2; cat"])
    ///     .stdin(Stdio::piped())
    ///     .stdout(Stdio::piped())
    ///     .stderr(Stdio::piped())
    ///     .spawn()?;
    /// let mut stdin = child.stdin.take().unwrap();
    /// let writer = green::spawn(move || stdin.write_all(b"banana"));
    /// let out = child.wait_with_output()?;
    /// writer.join().unwrap()?;
    /// assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"banana"[..], &b"pineapple"[..]));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let (stdout, stderr) = pipe::read_both(self.stdout.take(), self.stderr.take())?;
        let status = self.wait()?;
        Ok(Output { status, stdout, stderr })
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.exit.pid())
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}
