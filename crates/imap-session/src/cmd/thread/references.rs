//! THREAD=REFERENCES (RFC 5256 4) and THREAD=REFS (draft-ietf-morg-inthread, as Dovecot has
//! it), following Dovecot's `index-thread-links.c` and `index-thread-finish.c` step by step so
//! that clients see the same threads from both servers:
//!
//! 1. Messages are linked in UID order by Message-ID and References (In-Reply-To when there is
//!    no valid References id): consecutive references become parent and child unless the
//!    child already has a parent or the link would close a loop; the message's own parent is
//!    its last reference, replacing what earlier messages' references said.
//! 2. The roots are the nodes without a parent; ids no message in the set carries are dummies,
//!    which disappear, their messages going to the nearest real ancestor (or, if there is
//!    none, to the topmost dummy, which stays a root unless it has a single child).
//! 3. REFERENCES sorts the roots by date, gathers roots by base subject (RFC 5256 4 (5)) and
//!    merges them, then sorts again; REFS leaves subjects alone and sorts the threads by their
//!    newest message.
//!
//! Children are sorted by date, then UID. Dates are sent dates, INTERNALDATE where there is none.
//!
//! Everything is iterative over index arrays: no input can make it recurse. Checking a new link
//! for a loop walks up from the parent; each walk and all walks of one command together are
//! bounded, and a link whose check runs out of steps is not made (only absurdly deep or hostile
//! reference chains get that far).

use std::collections::HashMap;

use imap_proto::ThreadAlgorithm;

/// Longest walk up the tree to check one new link for a loop.
const MAX_WALK: usize = 1_000;
/// Most steps all the loop checks of one THREAD may take together.
const WALK_BUDGET: usize = 20_000_000;

/// One message of the set being threaded, in UID order.
#[derive(Debug, Clone)]
pub(crate) struct ThreadMsg<'a> {
    /// What the response shows: the sequence number, or the UID for UID THREAD.
    pub num: u32,
    pub uid: u32,
    /// The sent date, INTERNALDATE when there is none (RFC 5256 2.2).
    pub date: i64,
    pub message_id: Option<&'a str>,
    pub references: &'a [String],
    /// The base subject; `None` without a Subject field.
    pub subject: Option<&'a str>,
    pub reply_or_forward: bool,
}

const NONE: usize = usize::MAX;

/// A node of the id graph: a message, or an id only referred to (a dummy).
#[derive(Debug, Clone, Copy)]
struct Node {
    msg: usize,
    parent: usize,
}

/// A root of the final threads.
#[derive(Debug, Clone, Copy)]
struct Root {
    node: usize,
    dummy: bool,
    ignore: bool,
    reply_or_forward: bool,
    /// Position (in `roots`) of the root this one is merged into; [`NONE`] for none.
    parent_root: usize,
    date: i64,
    uid: u32,
}

/// The threads, ready to be written.
pub(crate) struct Threads<'m, 'a> {
    msgs: &'m [ThreadMsg<'a>],
    /// Per node: its message or [`NONE`] (dummy).
    node_msg: Vec<usize>,
    first_child: Vec<usize>,
    next_sibling: Vec<usize>,
    roots: Vec<Root>,
}

impl<'m, 'a> Threads<'m, 'a> {
    /// Threads `msgs` (in UID order) with REFERENCES or REFS.
    pub fn build(msgs: &'m [ThreadMsg<'a>], algorithm: ThreadAlgorithm) -> Threads<'m, 'a> {
        let nodes = link(msgs);
        let mut t = Threads {
            msgs,
            node_msg: nodes.iter().map(|n| n.msg).collect(),
            first_child: vec![NONE; nodes.len()],
            next_sibling: vec![NONE; nodes.len()],
            roots: Vec::new(),
        };
        t.create_shadows(&nodes);
        if algorithm == ThreadAlgorithm::Refs {
            t.sort_roots_by_newest(&nodes);
        } else {
            t.sort_roots();
            t.gather_subjects();
            if t.merge_subjects() {
                t.sort_roots();
            }
        }
        t
    }

    fn key(&self, node: usize) -> (i64, u32) {
        self.msgs
            .get(self.node_msg.get(node).copied().unwrap_or(NONE))
            .map_or((0, 0), |m| (m.date, m.uid))
    }

    fn add_child(&mut self, parent: usize, child: usize) {
        self.next_sibling[child] = self.first_child[parent];
        self.first_child[parent] = child;
    }

    /// A new node (a dummy root made by the subject merge).
    fn new_node(&mut self) -> usize {
        self.node_msg.push(NONE);
        self.first_child.push(NONE);
        self.next_sibling.push(NONE);
        self.node_msg.len() - 1
    }

    /// The children of a node, oldest first (an only child is not dated, as in Dovecot).
    fn children(&self, node: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut c = self.first_child[node];
        while c != NONE {
            out.push(c);
            c = self.next_sibling[c];
        }
        if out.len() > 1 {
            out.sort_by_key(|&c| self.key(c));
        }
        out
    }

    /// Step 2 (and the deferred step 3): roots, and each message under its nearest real
    /// ancestor, or under the topmost dummy when it has none.
    fn create_shadows(&mut self, nodes: &[Node]) {
        // Per dummy: the node its messages hang from, found once (path compression), so long
        // chains of dummies cost linear time.
        let mut resolved = vec![NONE; nodes.len()];
        let mut path = Vec::new();
        for idx in 0..nodes.len() {
            let n = nodes[idx];
            if n.parent == NONE {
                self.roots.push(Root {
                    node: idx,
                    dummy: n.msg == NONE,
                    ignore: false,
                    reply_or_forward: false,
                    parent_root: NONE,
                    date: 0,
                    uid: 0,
                });
                continue;
            }
            if n.msg == NONE {
                continue;
            }
            let mut p = n.parent;
            path.clear();
            while nodes[p].msg == NONE && nodes[p].parent != NONE && resolved[p] == NONE {
                path.push(p);
                p = nodes[p].parent;
            }
            let target = if nodes[p].msg == NONE && resolved[p] != NONE {
                resolved[p]
            } else {
                p
            };
            for &d in &path {
                resolved[d] = target;
            }
            self.add_child(target, idx);
        }
    }

    /// RFC 5256 4 (4): each root dated (a dummy by its oldest child, a dummy with one child
    /// replaced by it), then sorted by date and UID.
    fn sort_roots(&mut self) {
        for i in 0..self.roots.len() {
            let r = self.roots[i];
            if r.ignore {
                continue;
            }
            if r.dummy {
                let children = self.children(r.node);
                match children.as_slice() {
                    [] => self.roots[i].ignore = true,
                    [only] => {
                        let (date, uid) = self.key(*only);
                        let root = &mut self.roots[i];
                        root.node = *only;
                        root.dummy = false;
                        (root.date, root.uid) = (date, uid);
                    }
                    [oldest, ..] => {
                        (self.roots[i].date, self.roots[i].uid) = self.key(*oldest);
                    }
                }
            } else {
                (self.roots[i].date, self.roots[i].uid) = self.key(r.node);
            }
        }
        self.roots.sort_by_key(|r| (r.date, r.uid));
    }

    /// RFC 5256 4 (5)(A)-(B): the subject table, recording which root each root merges into.
    fn gather_subjects(&mut self) {
        let mut table: HashMap<&'a str, usize> = HashMap::new();
        for i in 0..self.roots.len() {
            let r = self.roots[i];
            let node = if !r.dummy {
                r.node
            } else if !r.ignore {
                match self.children(r.node).first() {
                    Some(&oldest) => oldest,
                    None => continue,
                }
            } else {
                continue;
            };
            let Some(msg) = self.msgs.get(self.node_msg[node]) else {
                continue;
            };
            let Some(subject) = msg.subject else {
                continue;
            };
            let reply = msg.reply_or_forward;
            if subject.is_empty() {
                continue;
            }
            match table.get(subject).copied() {
                None => {
                    table.insert(subject, i);
                }
                Some(t) => {
                    let held = self.roots[t];
                    if !held.dummy && (r.dummy || (held.reply_or_forward && !reply)) {
                        self.roots[t].parent_root = i;
                        table.insert(subject, i);
                    } else {
                        self.roots[i].parent_root = t;
                    }
                }
            }
            self.roots[i].reply_or_forward = reply;
        }
    }

    /// RFC 5256 4 (5)(C): merges the roots that share a thread subject. `true` if any did.
    fn merge_subjects(&mut self) -> bool {
        let mut changed = false;
        let count = self.roots.len();
        for i in 0..count {
            let cur = self.roots[i];
            if cur.parent_root == NONE || cur.ignore {
                continue;
            }
            changed = true;
            // The message in the subject table: the top of the chain. Each step goes to a root
            // recorded later in the table, so the chain ends.
            let mut top = cur.parent_root;
            let mut steps = 0;
            while let Some(next) = self.roots.get(top).map(|r| r.parent_root)
                && next != NONE
                && steps < self.roots.len()
            {
                top = next;
                steps += 1;
            }
            let Some(root) = self.roots.get(top).copied() else {
                continue;
            };
            if cur.dummy {
                // Both dummies: the current one's children join the table's, and it goes.
                let mut c = self.first_child[cur.node];
                while c != NONE {
                    let next = self.next_sibling[c];
                    self.add_child(root.node, c);
                    c = next;
                }
                self.first_child[cur.node] = NONE;
                self.roots[i].ignore = true;
            } else if root.dummy || (cur.reply_or_forward && !root.reply_or_forward) {
                // Under the table's message (a dummy, or the original of a reply).
                self.add_child(root.node, cur.node);
                self.roots[i].ignore = true;
            } else {
                // Siblings under a new dummy, which takes the table's place.
                let dummy = self.new_node();
                self.add_child(dummy, root.node);
                self.add_child(dummy, cur.node);
                let pos = self.roots.len();
                self.roots[top].parent_root = pos;
                self.roots[top].ignore = true;
                self.roots[i].ignore = true;
                self.roots.push(Root {
                    node: dummy,
                    dummy: true,
                    ignore: false,
                    reply_or_forward: false,
                    parent_root: NONE,
                    date: 0,
                    uid: 0,
                });
            }
        }
        changed
    }

    /// REFS: every thread dated by its newest message, oldest thread first; no subjects.
    fn sort_roots_by_newest(&mut self, nodes: &[Node]) {
        // The root of every node, found once per chain (path compression).
        let mut top = vec![NONE; nodes.len()];
        let mut path = Vec::new();
        for idx in 0..nodes.len() {
            let mut p = idx;
            path.clear();
            while top[p] == NONE && nodes[p].parent != NONE {
                path.push(p);
                p = nodes[p].parent;
            }
            let t = if top[p] == NONE { p } else { top[p] };
            top[p] = t;
            for &q in &path {
                top[q] = t;
            }
        }
        let mut position = vec![NONE; nodes.len()];
        for (i, r) in self.roots.iter_mut().enumerate() {
            position[r.node] = i;
            r.ignore = r.dummy && self.first_child[r.node] == NONE;
            r.uid = self.msgs.get(nodes[r.node].msg).map_or(0, |m| m.uid);
        }
        for (idx, n) in nodes.iter().enumerate() {
            let Some(m) = self.msgs.get(n.msg) else {
                continue;
            };
            if let Some(r) = position.get(top[idx]).and_then(|&p| self.roots.get_mut(p))
                && r.date < m.date
            {
                r.date = m.date;
            }
        }
        self.roots.sort_by_key(|r| (r.date, r.uid));
    }

    /// The `thread-list`s of a THREAD response (RFC 5256 5), written as Dovecot writes them:
    /// `(1 2 (3)(4 5))`, a dummy root as `((3)(4))`.
    pub fn write(&self, out: &mut Vec<u8>) {
        enum Item {
            /// A root, or one of several siblings: parenthesized.
            Wrapped(usize),
            /// An only child: no parentheses.
            Single(usize),
            Close,
        }
        let mut stack: Vec<Item> = Vec::new();
        for r in self.roots.iter().rev() {
            if !r.ignore {
                stack.push(Item::Wrapped(r.node));
            }
        }
        let num = |node: usize| self.msgs.get(self.node_msg[node]).map(|m| m.num);
        let push_children = |stack: &mut Vec<Item>, children: Vec<usize>| {
            if let [only] = children.as_slice() {
                stack.push(Item::Single(*only));
            } else {
                stack.extend(children.into_iter().rev().map(Item::Wrapped));
            }
        };
        while let Some(item) = stack.pop() {
            match item {
                Item::Close => out.push(b')'),
                Item::Wrapped(node) => {
                    let children = self.children(node);
                    let n = num(node);
                    if children.is_empty() {
                        // A childless dummy says nothing.
                        if let Some(n) = n {
                            out.extend_from_slice(format!("({n})").as_bytes());
                        }
                        continue;
                    }
                    out.push(b'(');
                    if let Some(n) = n {
                        out.extend_from_slice(format!("{n} ").as_bytes());
                    }
                    stack.push(Item::Close);
                    push_children(&mut stack, children);
                }
                Item::Single(node) => {
                    if let Some(n) = num(node) {
                        out.extend_from_slice(n.to_string().as_bytes());
                    }
                    let children = self.children(node);
                    if !children.is_empty() {
                        out.push(b' ');
                        push_children(&mut stack, children);
                    }
                }
            }
        }
    }
}

/// Step 1: the id graph of the messages, with parent links.
fn link(msgs: &[ThreadMsg<'_>]) -> Vec<Node> {
    let mut nodes: Vec<Node> = Vec::with_capacity(msgs.len() * 2);
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(msgs.len() * 2);
    let mut budget = WALK_BUDGET;
    let mut node_of = |nodes: &mut Vec<Node>, id| {
        *ids.entry(id).or_insert_with(|| {
            nodes.push(Node {
                msg: NONE,
                parent: NONE,
            });
            nodes.len() - 1
        })
    };
    for (i, m) in msgs.iter().enumerate() {
        let mut me = match m.message_id {
            Some(id) => node_of(&mut nodes, id),
            None => NONE,
        };
        if me == NONE || nodes[me].msg != NONE {
            // No Message-ID, or a duplicate one: the message stands alone (the first keeps
            // the id).
            nodes.push(Node {
                msg: NONE,
                parent: NONE,
            });
            me = nodes.len() - 1;
        }
        nodes[me].msg = i;
        let mut parent = NONE;
        for r in m.references {
            let n = node_of(&mut nodes, r.as_str());
            if parent != NONE {
                add_link(&mut nodes, parent, n, &mut budget);
            }
            parent = n;
        }
        // The message's own parent is its last reference; a different one that earlier
        // messages' references gave it goes.
        if nodes[me].parent != parent && nodes[me].parent != NONE {
            nodes[me].parent = NONE;
        }
        if parent != NONE {
            add_link(&mut nodes, parent, me, &mut budget);
        }
    }
    nodes
}

/// Makes `parent` the parent of `child`, unless `child` has one already or the link would make
/// a loop (or checking that would cost more than the walks allow).
fn add_link(nodes: &mut [Node], parent: usize, child: usize, budget: &mut usize) {
    if nodes[child].parent != NONE || parent == child {
        return;
    }
    // `child` is a root: the link makes a loop if `parent` descends from it.
    let mut p = parent;
    let mut steps = 0;
    while p != NONE {
        if p == child || steps == MAX_WALK || *budget == 0 {
            return;
        }
        p = nodes[p].parent;
        steps += 1;
        *budget -= 1;
    }
    nodes[child].parent = parent;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (uid, date, message-id, references, subject)
    type Spec<'a> = (u32, i64, Option<&'a str>, &'a [&'a str], Option<&'a str>);

    fn thread(specs: &[Spec<'_>], algorithm: ThreadAlgorithm) -> String {
        let refs: Vec<Vec<String>> = specs
            .iter()
            .map(|s| s.3.iter().map(|r| (*r).to_owned()).collect())
            .collect();
        let subjects: Vec<Option<(String, bool)>> = specs
            .iter()
            .map(|s| s.4.map(crate::cmd::sort::subject::base_subject))
            .collect();
        let msgs: Vec<ThreadMsg<'_>> = specs
            .iter()
            .zip(&refs)
            .zip(&subjects)
            .map(|((s, r), subj)| ThreadMsg {
                num: s.0,
                uid: s.0,
                date: s.1,
                message_id: s.2,
                references: r,
                subject: subj.as_ref().map(|(b, _)| b.as_str()),
                reply_or_forward: subj.as_ref().is_some_and(|(_, r)| *r),
            })
            .collect();
        let mut out = Vec::new();
        Threads::build(&msgs, algorithm).write(&mut out);
        String::from_utf8(out).unwrap()
    }

    use ThreadAlgorithm::{References as R, Refs};

    #[test]
    fn chains_siblings_and_missing_parents() {
        let specs: &[Spec<'_>] = &[
            (1, 100, Some("a@x"), &[], Some("one")),
            (2, 200, Some("b@x"), &["a@x"], Some("Re: one")),
            (3, 300, Some("c@x"), &["a@x", "b@x"], Some("Re: one")),
            (4, 250, Some("d@x"), &["a@x"], Some("Re: one")),
            // Replies to a message not in the set: a dummy with two children.
            (5, 500, Some("e@x"), &["gone@x"], Some("two")),
            (6, 400, Some("f@x"), &["gone@x"], Some("Re: two")),
            // A reply whose parent is missing but grandparent is here.
            (7, 700, Some("g@x"), &["a@x", "missing@x"], Some("Re: one")),
        ];
        assert_eq!(thread(specs, R), "(1 (2 3)(4)(7))((6)(5))");
        // REFS: threads by their newest message.
        assert_eq!(thread(specs, Refs), "((6)(5))(1 (2 3)(4)(7))");
    }

    #[test]
    fn a_dummy_with_one_child_is_replaced_by_it() {
        let specs: &[Spec<'_>] = &[
            (1, 100, Some("b@x"), &["gone@x"], Some("x")),
            (2, 200, Some("c@x"), &["b@x"], Some("y")),
        ];
        assert_eq!(thread(specs, R), "(1 2)");
        assert_eq!(thread(specs, Refs), "(1 2)");
    }

    #[test]
    fn loops_in_references_are_not_followed() {
        let specs: &[Spec<'_>] = &[
            // a's references say b is its parent, b's say a is: the second link would loop.
            (1, 100, Some("a@x"), &["b@x"], None),
            (2, 200, Some("b@x"), &["a@x"], None),
            // A message referring to itself.
            (3, 300, Some("c@x"), &["c@x"], None),
            // A reference list that loops through its own ids.
            (4, 400, Some("d@x"), &["p@x", "q@x", "p@x"], None),
        ];
        // 1's references made b its parent; 2 (b) saying a is its parent would close a loop,
        // so b stays the root with a under it.
        assert_eq!(thread(specs, R), "(2 1)(3)(4)");
    }

    #[test]
    fn subjects_gather_threads() {
        let specs: &[Spec<'_>] = &[
            // Two unrelated threads with one subject: the original takes the reply.
            (1, 100, Some("a@x"), &[], Some("Lunch")),
            (2, 200, Some("b@x"), &[], Some("Re: lunch")),
            // Two originals with one subject: siblings under a dummy.
            (3, 300, Some("c@x"), &[], Some("Report")),
            (4, 400, Some("d@x"), &[], Some("report")),
            // Empty and missing subjects never gather.
            (5, 500, Some("e@x"), &[], Some("")),
            (6, 600, Some("f@x"), &[], Some("Re:")),
            (7, 700, Some("g@x"), &[], None),
            (8, 800, Some("h@x"), &[], None),
        ];
        assert_eq!(thread(specs, R), "(1 2)((3)(4))(5)(6)(7)(8)");
        // REFS gathers nothing by subject.
        assert_eq!(thread(specs, Refs), "(1)(2)(3)(4)(5)(6)(7)(8)");
    }

    #[test]
    fn a_reply_arriving_first_goes_under_the_original() {
        let specs: &[Spec<'_>] = &[
            (1, 100, Some("r@x"), &[], Some("Re: plans")),
            (2, 200, Some("o@x"), &[], Some("Plans")),
        ];
        assert_eq!(thread(specs, R), "(2 1)");
    }

    #[test]
    fn duplicate_and_missing_message_ids() {
        let specs: &[Spec<'_>] = &[
            (1, 100, Some("a@x"), &[], None),
            (2, 200, Some("a@x"), &[], None),
            (3, 300, None, &["a@x"], None),
        ];
        // The first message keeps the id; the duplicate stands alone.
        assert_eq!(thread(specs, R), "(1 3)(2)");
    }

    #[test]
    fn deep_chains_write_without_recursion() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("{i}@x")).collect();
        let refs: Vec<Vec<String>> = (0..ids.len())
            .map(|i| {
                if i == 0 {
                    vec![]
                } else {
                    vec![ids[i - 1].clone()]
                }
            })
            .collect();
        let msgs: Vec<ThreadMsg<'_>> = (0..ids.len())
            .map(|i| ThreadMsg {
                num: i as u32 + 1,
                uid: i as u32 + 1,
                date: i as i64,
                message_id: Some(&ids[i]),
                references: &refs[i],
                subject: None,
                reply_or_forward: false,
            })
            .collect();
        let mut out = Vec::new();
        Threads::build(&msgs, R).write(&mut out);
        let text = String::from_utf8(out).unwrap();
        // The walk bound cuts the chain into threads of about MAX_WALK messages, never loses one.
        let numbers = text
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .count();
        assert_eq!(numbers, ids.len());
        assert!(text.starts_with("(1 2 3 "), "{}", &text[..40]);
    }

    /// References lists as long as kept, all chained into one line of missing messages: the
    /// loop checks run out of budget instead of taking quadratic time, and no message is lost.
    #[test]
    fn hostile_reference_chains_stay_bounded() {
        let n = 2_000;
        let per = crate::cmd::sort::MAX_REFERENCES;
        let ids: Vec<String> = (0..n).map(|i| format!("m{i}@x")).collect();
        let refs: Vec<Vec<String>> = (0..n)
            .map(|i| {
                // Each list goes on from where the previous message's list ended.
                (0..per)
                    .map(|k| format!("d{}@x", i * (per - 1) + k))
                    .collect()
            })
            .collect();
        let msgs: Vec<ThreadMsg<'_>> = (0..n)
            .map(|i| ThreadMsg {
                num: i as u32 + 1,
                uid: i as u32 + 1,
                date: 1_000 - i as i64,
                message_id: Some(&ids[i]),
                references: &refs[i],
                subject: Some("same"),
                reply_or_forward: i % 2 == 1,
            })
            .collect();
        let started = std::time::Instant::now();
        for algorithm in [R, Refs] {
            let mut out = Vec::new();
            Threads::build(&msgs, algorithm).write(&mut out);
            let text = String::from_utf8(out).unwrap();
            let mut seen: Vec<u32> = text
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|s| s.parse().ok())
                .collect();
            seen.sort_unstable();
            assert_eq!(seen, (1..=n as u32).collect::<Vec<_>>());
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
    }
}
