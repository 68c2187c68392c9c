//! The CAPABILITY list after login holds every capability the installed Dovecot 2.3 lists with
//! its default configuration (the Extensions issue's yardstick), except those deliberately not
//! offered yet, each named here with its reason.

mod common;

use std::collections::BTreeSet;

use common::{PASSWORD, RawClient, Server, USER};
use test_support::dovecot::Dovecot;

/// Capabilities Dovecot lists that Columba does not offer, and why.
const NOT_OFFERED: &[(&str, &str)] = &[(
    "NOTIFY",
    "RFC 5465 needs events from mailboxes other than the selected one pushed while no \
     command runs; not built yet",
)];

fn capability_set(line: &str) -> BTreeSet<String> {
    line.split_whitespace()
        .skip(2)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

#[test]
fn columba_lists_what_dovecot_lists_after_login() {
    let Some(dovecot) = Dovecot::start() else {
        return;
    };
    let mut client = dovecot.connect().expect("Dovecot login");
    let answer = client.command("CAPABILITY").expect("Dovecot CAPABILITY");
    let line = answer
        .untagged
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .find(|l| l.starts_with("* CAPABILITY "))
        .expect("Dovecot's CAPABILITY response");
    let dovecots = capability_set(&line);

    let server = Server::start();
    let mut c = RawClient::connect(server.imap);
    let login = c.command("a", &format!("LOGIN {USER} {PASSWORD}"));
    assert!(login.last().unwrap().starts_with("a OK"), "{login:?}");
    let lines = c.command("b", "CAPABILITY");
    let ours = capability_set(
        lines
            .iter()
            .find(|l| l.starts_with("* CAPABILITY "))
            .expect("Columba's CAPABILITY response"),
    );

    let missing: Vec<&String> = dovecots
        .iter()
        .filter(|c| !ours.contains(*c))
        .filter(|c| !NOT_OFFERED.iter().any(|(name, _)| name == c))
        .collect();
    assert!(
        missing.is_empty(),
        "Dovecot lists {missing:?}, Columba does not.\nDovecot: {dovecots:?}\nColumba: {ours:?}"
    );
    // A capability on the list that Columba does offer now must leave the list.
    for (name, _) in NOT_OFFERED {
        assert!(
            !ours.contains(*name),
            "{name} is offered: take it off NOT_OFFERED"
        );
    }
}
