//! The `columba` binary: command line, configuration, logging, and the wiring of listeners,
//! TLS, authentication and mail storage into IMAP, POP3 and LMTP sessions; the local delivery
//! agent (`columba deliver`). The only crate that uses `anyhow`.

mod backend;
mod checkpassword_reply;
mod config;
mod deliver;
mod fsutil;
mod index_admin;
mod limits;
mod lmtp;
mod migrate;
mod privsep;
mod server;
mod setup;
mod tls;
mod users;

use std::io::{IsTerminal as _, Read as _};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Parser)]
#[command(name = "columba", version, about = "An IMAP and POP3 server")]
struct Cli {
    /// Configuration file (TOML). Without one, the embedded defaults are used.
    #[arg(long, short = 'c', global = true)]
    config: Option<PathBuf>,
    /// Keep everything the embedded defaults create (certificate, users, mail) under DIR.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// IMAP (cleartext + STARTTLS) listener; repeatable; replaces the configured ones.
        #[arg(long = "imap")]
        imap: Vec<SocketAddr>,
        /// IMAPS (implicit TLS) listener; repeatable; replaces the configured ones.
        #[arg(long = "imaps")]
        imaps: Vec<SocketAddr>,
        /// POP3 (cleartext + STLS) listener; repeatable; replaces the configured ones.
        #[arg(long = "pop3")]
        pop3: Vec<SocketAddr>,
        /// POP3S (implicit TLS) listener; repeatable; replaces the configured ones.
        #[arg(long = "pop3s")]
        pop3s: Vec<SocketAddr>,
        /// LMTP listener; repeatable; replaces the configured ones.
        #[arg(long = "lmtp")]
        lmtp: Vec<SocketAddr>,
    },
    /// Deliver one message from standard input to a user's mailbox (a local delivery agent,
    /// like dovecot-lda): exit 0 delivered, 67 unknown user, 75 temporary failure, 77 over
    /// quota.
    Deliver {
        /// The user (looked up in the userdb); default the user running the command.
        #[arg(short = 'd')]
        user: Option<String>,
        /// The mailbox; INBOX when missing or not valid.
        #[arg(short = 'm')]
        mailbox: Option<String>,
        /// The envelope sender (for the log).
        #[arg(short = 'f')]
        sender: Option<String>,
        /// The original recipient address (for the log).
        #[arg(short = 'a')]
        recipient: Option<String>,
        /// Report a rejection on stderr with exit code 77 (always done; accepted for
        /// dovecot-lda compatibility).
        #[arg(short = 'e')]
        stderr_rejection: bool,
    },
    /// Print the effective configuration.
    Config,
    /// Manage the users of the passwd-file.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// Look at, check or rebuild one mailbox's index files.
    Index {
        #[command(subcommand)]
        action: IndexAction,
    },
    /// Copy a user's mail into another format (mbox <-> Maildir), keeping UIDVALIDITY, UIDs,
    /// flags, keywords, INTERNALDATE and POP3 UIDLs. The source is never changed; running the
    /// same command again resumes an interrupted run.
    Migrate {
        /// Where the mail is, as a mail location (`mbox:~/mail:INBOX=/var/mail/%u`,
        /// `maildir:~/Maildir`); default: the location the server uses for --user.
        #[arg(long)]
        from: Option<String>,
        /// Where the mail goes, as a mail location.
        #[arg(long)]
        to: String,
        /// Whose mail: expands `~` and `%u`, and gives the default --from.
        #[arg(long)]
        user: Option<String>,
        /// Print what would be copied, and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only this mailbox (repeatable).
        #[arg(long = "mailbox")]
        mailboxes: Vec<String>,
    },
    /// A process of the separated server, started by its master (never by hand).
    #[command(hide = true)]
    Internal {
        #[command(subcommand)]
        role: InternalRole,
    },
    /// The reply program of passdb "checkpassword": run by the checkpassword program after it
    /// accepted a password, writes USER, HOME and the variables EXTRA names to descriptor 4.
    #[command(hide = true)]
    CheckpasswordReply,
}

#[derive(Subcommand)]
enum InternalRole {
    Auth,
    Login {
        #[arg(long)]
        chroot: PathBuf,
        #[arg(long)]
        user: String,
        /// The kind of each listening socket handed over, in order.
        #[arg(long = "listener")]
        listeners: Vec<String>,
    },
    Worker {
        #[arg(long)]
        user: String,
    },
    Lmtp {
        /// The kind of each listening socket handed over, in order.
        #[arg(long = "listener")]
        listeners: Vec<String>,
    },
    /// One delivery of the lmtp process: configuration on descriptor 3, message on stdin.
    Deliver {
        #[arg(long)]
        user: String,
        /// Only check that the user has room for a message (LMTP's check at RCPT).
        #[arg(long)]
        check_quota: bool,
    },
}

#[derive(Subcommand)]
enum IndexAction {
    /// Print the index header, the cache's size and, with --records, every message's record.
    Dump {
        user: String,
        mailbox: String,
        #[arg(long)]
        records: bool,
    },
    /// Validate the index files; exit status 1 when one was damaged. The mailbox is then read as
    /// the server would, which repairs what can be repaired.
    Check { user: String, mailbox: String },
    /// Delete the index and cache and index the mailbox again from its files. Run it while the
    /// server is stopped: a running server saves its own copy when it closes the mailbox.
    Rebuild { user: String, mailbox: String },
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        /// Password scheme (Dovecot's names: SHA512-CRYPT, the default; SCRAM-SHA-256 for
        /// SCRAM logins; PLAIN for CRAM-MD5...).
        #[arg(long)]
        scheme: Option<String>,
    },
    /// List users.
    List,
    /// Delete a user (their mail is kept).
    Del { name: String },
    /// Change a user's password, read from standard input.
    Passwd {
        name: String,
        /// Password scheme, as for `add`.
        #[arg(long)]
        scheme: Option<String>,
    },
}

fn main() {
    if let Err(e) = run() {
        eprintln!("columba: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    config.mail.fsync.apply();
    match cli.command {
        Command::Serve {
            imap,
            imaps,
            pop3,
            pop3s,
            lmtp,
        } => {
            init_logging(&config.log.level);
            // Each listener kind given on the command line replaces the configured ones.
            if !imap.is_empty() {
                config.imap.listen = imap;
            }
            if !imaps.is_empty() {
                config.imap.listen_tls = imaps;
            }
            if !pop3.is_empty() {
                config.pop3.listen = pop3;
            }
            if !pop3s.is_empty() {
                config.pop3.listen_tls = pop3s;
            }
            if !lmtp.is_empty() {
                config.lmtp.listen = lmtp;
            }
            if let Some(password) = setup::ensure_data_dir(&config)? {
                // Printed once, on the terminal of whoever started the server first.
                println!(
                    "Created demo user '{}' with password '{}' in {}",
                    setup::DEMO_USER,
                    password,
                    config.passwd_path().display()
                );
            }
            if privsep::separated(&config)? {
                return privsep::run_master(config);
            }
            serve_single_process(config)
        }
        Command::Deliver {
            user,
            mailbox,
            sender,
            recipient,
            stderr_rejection: _,
        } => {
            // stderr is what the MTA puts in a bounce: only warnings go there by default.
            init_logging("warn");
            let args = deliver::Args {
                user,
                mailbox,
                sender,
                recipient,
                check_quota_only: false,
            };
            std::process::exit(deliver::run(&config, &args))
        }
        Command::Config => {
            print!("{}", config.effective().to_toml()?);
            Ok(())
        }
        Command::User { action } => users::run(&config, action),
        Command::Index { action } => {
            init_logging(&config.log.level);
            index_admin::run(&config, action)
        }
        Command::Migrate {
            from,
            to,
            user,
            dry_run,
            mailboxes,
        } => {
            init_logging(&config.log.level);
            migrate::run(
                &config,
                migrate::Args {
                    from,
                    to,
                    user,
                    dry_run,
                    mailboxes,
                },
            )
        }
        Command::CheckpasswordReply => std::process::exit(checkpassword_reply::run()),
        Command::Internal { role } => privsep::run_child(match role {
            // Its stdin is the message, not the configuration: not a run_child role.
            InternalRole::Deliver { user, check_quota } => {
                std::process::exit(privsep::deliver_child(user, check_quota))
            }
            InternalRole::Auth => privsep::Role::Auth,
            InternalRole::Login {
                chroot,
                user,
                listeners,
            } => privsep::Role::Login {
                listeners: listeners
                    .iter()
                    .map(|name| {
                        server::ListenerKind::from_name(name)
                            .with_context(|| format!("unknown listener kind {name:?}"))
                    })
                    .collect::<anyhow::Result<_>>()?,
                chroot,
                user,
            },
            InternalRole::Worker { user } => privsep::Role::Worker { user },
            InternalRole::Lmtp { listeners } => privsep::Role::Lmtp { listeners },
        }),
    }
}

/// One process serves everything (virtual users, or a server not started as root). Started as
/// root, it binds the ports and reads the TLS key first, then gives up root.
fn serve_single_process(config: Config) -> anyhow::Result<()> {
    let listeners = server::bind_listeners(&config)?;
    let acceptor = tls::acceptor_with_client_auth(
        &config.cert_path(),
        &config.key_path(),
        tls::ClientCertAuth::from_config(&config).as_ref(),
    )?;
    let backend = std::sync::Arc::new(backend::AuthBackend::from_config(&config)?);
    let lmtp_listeners = lmtp::bind(&config)?;
    // Only a server that delivers needs a userdb that can look users up without a login.
    let lmtp_context = if lmtp_listeners.is_empty() {
        None
    } else {
        Some(std::sync::Arc::new(lmtp_session::SessionContext {
            settings: lmtp::settings(&config),
            backend: std::sync::Arc::new(lmtp::LocalDelivery::from_config(&config)?),
        }))
    };
    privsep::drop_root_single_process(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let prelogin = backend.prelogin.clone();
    let backends = server::Backends {
        imap: backend.clone(),
        pop3: backend,
    };
    let result = runtime.block_on(async {
        if let Some(context) = lmtp_context {
            lmtp::spawn(lmtp_listeners, context, config.lmtp.max_connections)?;
        }
        server::serve_listeners(&config, listeners, acceptor, backends, prelogin).await
    });
    // Ending the runtime ends the sessions, which let go of their mailboxes; the ones
    // kept open for reuse are closed here, and closing saves their indexes.
    drop(runtime);
    mail_store::maildir::release_idle_mailboxes(std::path::Path::new("/"));
    mail_store::mbox::release_idle_mailboxes(std::path::Path::new("/"));
    result
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COLUMBA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Reads a password from standard input: the first line, without its line ending.
fn read_password() -> anyhow::Result<String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let password = input.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        anyhow::bail!("empty password");
    }
    Ok(password)
}
