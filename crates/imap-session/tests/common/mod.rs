//! What the session tests that drive whole conversations in code share: a context over the
//! two-user test backend, and a session started on an in-memory stream.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use imap_session::{ConnectionInfo, ImapSettings, LoginPenalty, SessionContext, UserBackend};
use test_support::transcript::{Conn, TestBackend};

/// A listener's context: alice and bob with their Maildirs under `root`; IDLE polls quickly.
pub fn context(root: &std::path::Path) -> Arc<SessionContext> {
    context_with(Arc::new(TestBackend {
        root: root.to_owned(),
    }))
}

/// [`context`] over another backend.
pub fn context_with(backend: Arc<dyn UserBackend>) -> Arc<SessionContext> {
    Arc::new(SessionContext {
        settings: ImapSettings {
            idle_poll_interval: Duration::from_millis(50),
            ..ImapSettings::default()
        },
        backend,
        starttls: None,
        penalty: Arc::new(LoginPenalty::new(
            Duration::from_millis(1),
            Duration::from_millis(5),
        )),
    })
}

/// Serves `stream` as a connection from loopback.
pub fn serve<S>(ctx: &Arc<SessionContext>, stream: S, id: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let info = ConnectionInfo {
        remote: "127.0.0.1:5000".parse::<SocketAddr>().unwrap(),
        local: "127.0.0.1:143".parse().unwrap(),
        implicit_tls: false,
        session_id: id.into(),
    };
    tokio::spawn(imap_session::serve(Box::new(stream), ctx.clone(), info));
}

/// Sends a command and returns every line up to and including its tagged reply.
pub async fn command(conn: &mut Conn, tag: &str, text: &str) -> Vec<String> {
    conn.send(format!("{tag} {text}\r\n").as_bytes()).await;
    let mut lines = Vec::new();
    loop {
        let line = conn.line().await;
        let done = line.starts_with(&format!("{tag} "));
        lines.push(line);
        if done {
            return lines;
        }
    }
}
