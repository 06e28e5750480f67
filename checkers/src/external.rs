//! `checktype=external`: ldirectord's `checkcommand`, run with the four
//! arguments ldirectord gives it: the virtual's address (or fwmark), the
//! virtual's port, the real's address, the real's port. Exit status 0 is
//! up; anything else, including being killed, is down.
//!
//! The command runs through `sh -c` (so `checkcommand="/usr/local/bin/chk
//! --quick"` works as in ldirectord) in a process group of its own. When
//! the probe ends, normally or because the caller's deadline dropped it,
//! the whole group is killed: a script that forked a child that hangs
//! leaves nothing behind.

use std::process::{ExitStatus, Stdio};

use tokio::process::Command;

use crate::{ProbeError, Step};

/// An external check of one real.
#[derive(Debug, Clone)]
pub struct External {
    command: String,
    args: [String; 4],
    subject: String,
}

impl External {
    /// Runs `command VIP VPORT RIP RPORT`.
    pub fn new(command: &str, args: [String; 4]) -> External {
        External {
            subject: format!("external {} {}", command, args.join(" ")),
            command: command.to_owned(),
            args,
        }
    }

    async fn run(&self) -> Result<(), ProbeError> {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("{} \"$@\"", self.command))
            .arg("sh")
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            // No process or descriptor left is this host's trouble.
            let step = if crate::is_local(&e) || e.raw_os_error() == Some(libc::EAGAIN) {
                Step::Local
            } else {
                Step::Internal
            };
            ProbeError::new(&self.subject, step, format!("cannot run: {e}"))
        })?;
        // Kills the group when this future ends or is dropped.
        let _group = child.id().map(Group);
        let status = child
            .wait()
            .await
            .map_err(|e| ProbeError::new(&self.subject, Step::Internal, format!("waiting: {e}")))?;
        if status.success() {
            Ok(())
        } else {
            Err(ProbeError::new(
                &self.subject,
                Step::Answer,
                describe(status),
            ))
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// A process group, killed (SIGKILL) when dropped.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        let Ok(pgid) = libc::pid_t::try_from(self.0) else {
            return;
        };
        // SAFETY: kill(2) takes plain integers and touches no memory of
        // ours; a negative pid names the process group this checker
        // created with process_group(0) for its own child. If the group
        // is already gone the call fails with ESRCH, which is ignored.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

checker_via_run!(External);
