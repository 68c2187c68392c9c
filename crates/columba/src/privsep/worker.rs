//! A user's mail process: started by the master as the user's uid and gid, it serves every
//! connection of that user that the master hands it, as IMAP or POP3 sessions resuming right
//! after their login. It never sees a password, and it can open only what the user can.

use std::sync::Arc;

use anyhow::Context as _;
use pop3_session::MaildropLocks;
use session_api::{BoxedStream, UserBackend};
use tokio::task::JoinSet;

use super::inherited_fd;
use super::ipc::{self, FrameReader, FrameWriter, Sender};
use super::privileges;
use super::protocol::{Connection, Protocol, get_record};
use crate::backend::MailBackend;
use crate::config::Config;
use crate::server;

pub fn run(config: Config, user: String) -> anyhow::Result<()> {
    if privileges::running_as_root() {
        anyhow::bail!("a mail process must not run as root");
    }
    privileges::forbid_new_privileges()?;
    // Mail files are the user's alone (0600), as Dovecot creates them.
    // SAFETY: umask only sets the process's file mode mask.
    unsafe {
        libc::umask(0o077);
    }
    let from_master = inherited_fd(0)?;
    // One thread for the sessions: a single user's connections rarely need more, and with a
    // process per user the threads, stacks and allocator arenas of a multi-threaded runtime
    // would be paid once per user. Disk work still goes to tokio's blocking pool.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(serve(config, user, from_master));
    // Ending the runtime ends the sessions; closing the mailboxes they kept saves their indexes.
    drop(runtime);
    mail_store::maildir::release_idle_mailboxes(std::path::Path::new("/"));
    mail_store::mbox::release_idle_mailboxes(std::path::Path::new("/"));
    result
}

struct Contexts {
    imap: Arc<imap_session::SessionContext>,
    pop3: Arc<pop3_session::SessionContext>,
}

async fn serve(
    config: Config,
    user: String,
    from_master: std::os::fd::OwnedFd,
) -> anyhow::Result<()> {
    let (tx, mut rx) = ipc::channel(from_master.into())?;
    let backend: Arc<dyn UserBackend> = Arc::new(MailBackend::from_config(&config));
    let penalty = server::login_penalty(&config);
    let contexts = Contexts {
        imap: Arc::new(imap_session::SessionContext {
            settings: server::imap_settings(&config),
            backend: backend.clone(),
            starttls: None,
            penalty: penalty.clone(),
        }),
        pop3: Arc::new(pop3_session::SessionContext {
            settings: server::pop3_settings(&config)?,
            backend,
            starttls: None,
            penalty,
            locks: Arc::new(MaildropLocks::new()),
        }),
    };
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            frame = rx.recv() => match frame {
                Ok(Some(frame)) => {
                    if let Err(e) = start_session(&contexts, &user, frame, &tx, &mut sessions) {
                        tracing::warn!("mail process of {user}: {e}");
                    }
                }
                // The master retired this process, or is gone: finish what is running.
                Ok(None) => break,
                Err(e) => return Err(e).context("channel from the master"),
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            () = server::shutdown_signal() => return Ok(()),
        }
    }
    tokio::select! {
        () = async { while sessions.join_next().await.is_some() {} } => {}
        () = server::shutdown_signal() => {}
    }
    Ok(())
}

fn start_session(
    contexts: &Contexts,
    user: &str,
    mut frame: FrameReader,
    tx: &Sender,
    sessions: &mut JoinSet<()>,
) -> anyhow::Result<()> {
    if frame.kind()? != "serve" {
        anyhow::bail!("unknown message from the master");
    }
    let record = get_record(&mut frame)?;
    if record.name != user {
        anyhow::bail!("the master sent a connection of {}", record.name);
    }
    let connection = Connection::get(&mut frame)?;
    let socket = std::os::unix::net::UnixStream::from(frame.take_fd()?);
    socket.set_nonblocking(true)?;
    let stream: BoxedStream = Box::new(tokio::net::UnixStream::from_std(socket)?);
    let (protocol, info, login) = connection.logged_in(record);
    let imap = contexts.imap.clone();
    let pop3 = contexts.pop3.clone();
    let tx = tx.clone();
    sessions.spawn(async move {
        match protocol {
            Protocol::Imap => imap_session::serve_logged_in(stream, imap, info, login).await,
            Protocol::Pop3 => pop3_session::serve_logged_in(stream, pop3, info, login).await,
        }
        // The master counts this user's connections to know when this process may go.
        let _ = tx.send(FrameWriter::new("ended")).await;
    });
    Ok(())
}
