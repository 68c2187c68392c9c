//! LMTP in the separated process model. The master starts an **lmtp** process (root, like
//! Dovecot's lmtp service, and for the same reason: it writes mail as many users) with the
//! LMTP listeners. It speaks LMTP and looks recipients up in the userdb, but writes no mail
//! itself: each recipient's delivery runs in a fresh `columba internal deliver` child, which
//! looks the user up again, becomes that user (uid and gid, no groups, never root) before it
//! opens anything, stores the message from its stdin and reports by exit code — the code
//! path of `columba deliver`. The LMTP reply for that recipient is sent only after the child
//! exited 0, that is after the message was fsynced.

use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::process::{Command, Stdio};
use std::sync::Arc;

use anyhow::Context as _;
use auth::{UserLookup, UserRecord};
use lmtp_session::{DeliveryBackend, DeliveryFailure, SessionContext};

use super::inherited_fd;
use super::privileges::{self, pass_fds};
use crate::config::Config;
use crate::deliver::{EX_NOPERM, EX_TEMPFAIL};
use crate::lmtp::Listener;

/// Runs the lmtp process: the listeners handed over (`kinds` names each, in order), the full
/// configuration (for the userdb) from the master.
pub fn run(config: Config, kinds: Vec<String>) -> anyhow::Result<()> {
    let mut listeners = Vec::new();
    for (i, kind) in kinds.iter().enumerate() {
        let fd = inherited_fd(i as i32)?;
        listeners.push(Listener::inherited(kind, fd)?);
    }
    privileges::forbid_new_privileges()?;
    let context = Arc::new(SessionContext {
        settings: crate::lmtp::settings(&config),
        backend: Arc::new(SpawnDelivery {
            users: crate::backend::delivery_users(&config)?,
            config_toml: config.to_toml()?,
        }),
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        crate::lmtp::spawn(listeners, context, config.lmtp.max_connections)?;
        crate::server::shutdown_signal().await;
        Ok(())
    })
}

/// Delivers each recipient's copy in a child that becomes the recipient.
struct SpawnDelivery {
    users: UserLookup,
    /// Handed to each child on descriptor 3 (its stdin is the message).
    config_toml: String,
}

impl DeliveryBackend for SpawnDelivery {
    fn lookup(&self, username: &str) -> Result<Option<UserRecord>, String> {
        self.users.lookup(username).map_err(|e| e.to_string())
    }

    /// `[lmtp] rcpt_check_quota`: a child that becomes the user looks at their mailboxes.
    fn over_quota(&self, user: &UserRecord) -> Result<bool, String> {
        let (code, stderr) = self
            .run_child(&user.name, &["--check-quota"], b"")
            .map_err(|e| format!("{e:#}"))?;
        match code {
            Some(0) => Ok(false),
            Some(EX_NOPERM) => Ok(true),
            _ => Err(format!(
                "quota check process exited with {code:?}: {}",
                stderr.trim()
            )),
        }
    }

    fn deliver(&self, user: &UserRecord, message: &[u8]) -> Result<(), DeliveryFailure> {
        let (code, stderr) = self
            .run_child(&user.name, &[], message)
            .map_err(|e| DeliveryFailure::Temporary(format!("{e:#}")))?;
        let quota = stderr.contains(session_api::quota::QUOTA_EXCEEDED_MESSAGE);
        match code {
            Some(0) => Ok(()),
            Some(EX_NOPERM) | Some(EX_TEMPFAIL) if quota => Err(DeliveryFailure::OverQuota),
            _ => Err(DeliveryFailure::Temporary(format!(
                "delivery process exited with {code:?}: {}",
                stderr.trim()
            ))),
        }
    }
}

impl SpawnDelivery {
    /// Runs `columba internal deliver --user NAME [extra]` with the configuration on
    /// descriptor 3 and `message` on stdin; its exit code and stderr.
    fn run_child(
        &self,
        user: &str,
        extra: &[&str],
        message: &[u8],
    ) -> anyhow::Result<(Option<i32>, String)> {
        let (config_reader, mut config_writer) = std::io::pipe()?;
        let program =
            std::env::current_exe().unwrap_or_else(|_| std::path::PathBuf::from("/proc/self/exe"));
        let mut command = Command::new(program);
        command
            .args(["internal", "deliver", "--user", user])
            .args(extra)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        pass_fds(&mut command, &[config_reader.as_fd()]);
        let mut child = command.spawn().context("starting a delivery process")?;
        drop(config_reader);
        // The child reads its configuration to the end before it reads the message.
        let written = config_writer
            .write_all(self.config_toml.as_bytes())
            .and_then(|()| {
                drop(config_writer);
                let mut stdin = child.stdin.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
                stdin.write_all(message)
            });
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            // At most a line or two; bounded all the same.
            let _ = err.by_ref().take(64 * 1024).read_to_string(&mut stderr);
        }
        let status = child.wait().context("waiting for the delivery process")?;
        if let Err(e) = written
            && status.success()
        {
            anyhow::bail!("feeding the delivery process: {e}");
        }
        Ok((status.code(), stderr))
    }
}

/// `columba internal deliver --user NAME`: the configuration on descriptor 3, the message on
/// stdin; delivers as `columba deliver -d NAME` does and returns its exit code. With
/// `check_quota_only`, reads no message and answers 0 (room for one) or 77 (full).
pub fn deliver_child(user: String, check_quota_only: bool) -> i32 {
    let config = match read_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e:#}");
            return EX_TEMPFAIL;
        }
    };
    crate::init_logging("warn");
    let args = crate::deliver::Args {
        user: Some(user),
        check_quota_only,
        ..crate::deliver::Args::default()
    };
    crate::deliver::run(&config, &args)
}

fn read_config() -> anyhow::Result<Config> {
    let mut text = String::new();
    std::fs::File::from(inherited_fd(0)?)
        .take(4 << 20)
        .read_to_string(&mut text)
        .context("reading the configuration from the lmtp process")?;
    toml::from_str(&text).context("configuration from the lmtp process")
}
