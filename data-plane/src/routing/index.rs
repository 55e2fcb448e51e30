//! The route table's index: entries are found without walking the table, first by host (an
//! exact-host map, a wildcard-suffix map and an any-host bucket), then inside each host bucket by
//! path (an exact-path map, a trie over path segments for prefixes, and the regex entries, behind
//! one `RegexSet` when there are many). Each candidate list is sorted by precedence, so a lookup
//! takes the first entry of each list whose method, header and query conditions hold, stops as
//! soon as a list can no longer beat the best entry so far, and keeps the best one. Nothing is
//! allocated per lookup.

use std::cell::RefCell;
use std::sync::Arc;

// Keys are configured hosts and path segments, looked up with the request's: a seeded fast hash
// instead of SipHash, which cost more than the rest of a lookup.
use foldhash::{HashMap, HashMapExt, HashSet};
use regex::RegexSet;

use super::host_map::HostMap;
use super::matcher::{PathCond, RequestInfo, host_buffer, lowercase_host};
use super::rank::{Best, Slot, insert_all_sorted, insert_sorted};
use super::regex_memo::{RegexMemo, Regexes};
use super::route::CompiledRoute;
use crate::keys::host_without_port;

/// Regex groups up to this size are tried one by one in rank order; larger ones go through a
/// `RegexSet` first.
const REGEX_SET_MIN: usize = 8;
/// Bound on the memory of one host bucket's `RegexSet`; above it the bucket tries its regexes
/// one by one.
const REGEX_SET_SIZE_LIMIT: usize = 64 * 1024 * 1024;

/// One node of a bucket's path-segment trie; its entries are the prefixes that end here.
#[derive(Debug, Default, Clone)]
pub(super) struct Node {
    pub(super) children: HashMap<Box<str>, u32>,
    pub(super) entries: Vec<Slot>,
}

/// The entries of one host pattern, indexed by path.
#[derive(Debug, Clone)]
pub(super) struct Bucket {
    pub(super) exact: HashMap<Box<str>, Vec<Slot>>,
    /// Node 0 is the root (prefix `/` and entries without a path condition).
    pub(super) trie: Vec<Node>,
    /// Regex entries in precedence order.
    pub(super) regexes: Vec<Slot>,
    /// Over the patterns of `regexes`, in the same order, once there are enough of them.
    pub(super) regex_set: Option<RegexSet>,
}

impl Default for Bucket {
    fn default() -> Self {
        Bucket {
            exact: HashMap::new(),
            trie: vec![Node::default()],
            regexes: Vec::new(),
            regex_set: None,
        }
    }
}

/// What a patch changes in one bucket.
#[derive(Debug, Default)]
pub(super) struct BucketEdit<'r> {
    /// Entries to take out: the route's name and the path condition it put them under.
    pub(super) removed: Vec<(PathCond, &'r str)>,
    pub(super) added: Vec<Slot>,
}

/// One of a bucket's precedence-sorted lists.
#[derive(Debug, PartialEq, Eq, Hash)]
enum List {
    Exact(Box<str>),
    /// The entries of a trie node.
    Node(usize),
    Regex,
}

/// Segments of a path after its leading slash: `/a/b` → `a`, `b`; the empty prefix has none.
pub(super) fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.strip_prefix('/')
        .filter(|_| !path.is_empty())
        .into_iter()
        .flat_map(|rest| rest.split('/'))
}

impl Bucket {
    pub(super) fn insert(&mut self, slot: Slot) {
        let list = match &slot.path {
            PathCond::Exact(p) => self.exact.entry(p.clone()).or_default(),
            PathCond::Prefix(p) => {
                let node = self.node_for(p);
                &mut self.trie[node].entries
            }
            PathCond::Any => &mut self.trie[0].entries,
            PathCond::Regex(_) => &mut self.regexes,
        };
        insert_sorted(list, slot);
    }

    /// The trie node of `prefix`, created with its parents if missing.
    pub(super) fn node_for(&mut self, prefix: &str) -> usize {
        let mut node = 0usize;
        for segment in segments(prefix) {
            let next = self.trie.len() as u32;
            let child = *self.trie[node]
                .children
                .entry(segment.into())
                .or_insert(next);
            if child == next {
                self.trie.push(Node::default());
            }
            node = child as usize;
        }
        node
    }

    pub(super) fn find_node(&self, prefix: &str) -> Option<usize> {
        let mut node = 0usize;
        for segment in segments(prefix) {
            node = *self.trie.get(node)?.children.get(segment)? as usize;
        }
        Some(node)
    }

    /// Takes out the entries `edit` removes and puts in the ones it adds, each list of the
    /// bucket rewritten at most once; says whether the regex entries changed.
    pub(super) fn apply(&mut self, edit: BucketEdit<'_>) -> bool {
        let mut regex_changed = false;
        let mut removed: HashMap<List, HashSet<&str>> = HashMap::new();
        for (path, name) in edit.removed {
            let list = match path {
                PathCond::Exact(p) => List::Exact(p),
                PathCond::Prefix(p) => match self.find_node(&p) {
                    Some(node) => List::Node(node),
                    None => continue,
                },
                PathCond::Any => List::Node(0),
                PathCond::Regex(_) => List::Regex,
            };
            removed.entry(list).or_default().insert(name);
        }
        for (list, names) in removed {
            let keep = |e: &Slot| !names.contains(&*e.route.name);
            match list {
                List::Exact(p) => {
                    if let Some(entries) = self.exact.get_mut(&p) {
                        entries.retain(keep);
                        if entries.is_empty() {
                            self.exact.remove(&p);
                        }
                    }
                }
                List::Node(node) => self.trie[node].entries.retain(keep),
                List::Regex => {
                    self.regexes.retain(keep);
                    regex_changed = true;
                }
            }
        }
        let mut added: HashMap<List, Vec<Slot>> = HashMap::new();
        for slot in edit.added {
            let list = match &slot.path {
                PathCond::Exact(p) => List::Exact(p.clone()),
                PathCond::Prefix(p) => List::Node(self.node_for(p)),
                PathCond::Any => List::Node(0),
                PathCond::Regex(_) => List::Regex,
            };
            added.entry(list).or_default().push(slot);
        }
        for (list, slots) in added {
            let entries = match list {
                List::Exact(p) => self.exact.entry(p).or_default(),
                List::Node(node) => &mut self.trie[node].entries,
                List::Regex => {
                    regex_changed = true;
                    &mut self.regexes
                }
            };
            insert_all_sorted(entries, slots);
        }
        regex_changed
    }

    pub(super) fn is_empty(&self) -> bool {
        self.exact.is_empty()
            && self.regexes.is_empty()
            && self.trie.iter().all(|n| n.entries.is_empty())
    }

    /// Rebuilds the regex set after `regexes` changed.
    pub(super) fn refresh_regex_set(&mut self, regexes: &Regexes<'_>) {
        self.regex_set = None;
        if self.regexes.len() < REGEX_SET_MIN {
            return;
        }
        let patterns: Vec<&str> = self
            .regexes
            .iter()
            .map(|e| match &e.path {
                PathCond::Regex(Some(re)) => re.as_str(),
                // A pattern that did not compile must never match: this one cannot.
                _ => "[^\\s\\S]",
            })
            .collect();
        match regexes.regex_set(&patterns, REGEX_SET_SIZE_LIMIT) {
            Ok(set) => self.regex_set = Some(set),
            Err(error) => tracing::warn!(%error, "regex routes are matched one by one"),
        }
    }
}

thread_local! {
    /// Per-thread scratch for `RegexSet` results, grown once to the largest group.
    static REGEX_HITS: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };
}

/// Buckets are shared between the tables of successive revisions: a patch copies only the
/// buckets it changes.
#[derive(Debug, Default, Clone)]
pub struct RouteTable {
    pub(super) exact: HostMap<Arc<Bucket>>,
    /// Keyed by the suffix with its leading dot.
    pub(super) wildcard: HostMap<Arc<Bucket>>,
    pub(super) any: Arc<Bucket>,
    pub(super) len: usize,
    /// The regexes compiled for this table and the ones it was patched from.
    pub(super) regexes: Arc<RegexMemo>,
}

/// The route chosen for a request.
#[derive(Debug, Clone, Copy)]
pub struct RouteMatch<'a> {
    pub route: &'a CompiledRoute,
    /// Bytes to remove from the front of the path (0 when nothing is stripped).
    pub strip_len: usize,
    /// Bytes of the path the route's path condition matched (what a prefix rewrite replaces).
    pub matched_len: usize,
}

impl RouteTable {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The best route for a request. The host (raw `Host` header or URI authority) is compared
    /// without port and case.
    pub fn lookup(&self, request: &RequestInfo<'_>) -> Option<RouteMatch<'_>> {
        let mut best = Best(None);
        if let Some(raw) = request.host {
            let mut buf = host_buffer();
            if let Some(host) = lowercase_host(host_without_port(raw), &mut buf) {
                if let Some(bucket) = self.exact.get(host) {
                    best_in(bucket, request, &mut best);
                }
                if !self.wildcard.is_empty() {
                    // Every suffix that starts at a dot, longest first: `.b.example.com`, ...
                    for (at, _) in host.match_indices('.').filter(|(at, _)| *at > 0) {
                        if let Some(bucket) = self.wildcard.get(&host[at..]) {
                            best_in(bucket, request, &mut best);
                        }
                    }
                }
            }
        }
        best_in(&self.any, request, &mut best);
        let entry = best.0?;
        let route = &*entry.route;
        let strip_len = if route.strip_prefix {
            entry.path.strip_len()
        } else {
            0
        };
        Some(RouteMatch {
            route,
            strip_len,
            matched_len: entry.path.matched_len(request.path),
        })
    }
}

fn best_in<'t>(bucket: &'t Bucket, request: &RequestInfo<'_>, best: &mut Best<'t>) {
    let path = request.path;
    if let Some(list) = bucket.exact.get(path) {
        first_in(list, request, false, best);
    }
    let Some(root) = bucket.trie.first() else {
        return;
    };
    // A path that does not start with `/` (e.g. `OPTIONS *`) only meets entries without a
    // path condition, which the check of the root's entries sorts out.
    let rooted = path.starts_with('/');
    first_in(&root.entries, request, !rooted, best);
    if rooted {
        let mut node = root;
        for segment in segments(path) {
            let Some(child) = node
                .children
                .get(segment)
                .and_then(|c| bucket.trie.get(*c as usize))
            else {
                break;
            };
            node = child;
            first_in(&node.entries, request, false, best);
        }
    }
    let regexes = &bucket.regexes;
    let Some(set) = &bucket.regex_set else {
        return first_in(regexes, request, true, best);
    };
    if regexes.first().is_none_or(|first| !best.beaten_by(first)) {
        return;
    }
    REGEX_HITS.with(|hits| {
        let Ok(mut hits) = hits.try_borrow_mut() else {
            return first_in(regexes, request, true, best);
        };
        if hits.len() < regexes.len() {
            hits.resize(regexes.len(), false);
        }
        let hits = &mut hits[..regexes.len()];
        hits.fill(false);
        if !set.matches_read_at(hits, path, 0) {
            return;
        }
        for (entry, _) in regexes.iter().zip(hits.iter()).filter(|(_, hit)| **hit) {
            if !best.beaten_by(entry) {
                return;
            }
            if entry.route.conditions_hold(request) {
                best.0 = Some(entry);
                return;
            }
        }
    });
}

/// Takes the first entry of a precedence-sorted list that beats `best` and whose conditions
/// hold.
fn first_in<'t>(
    list: &'t [Slot],
    request: &RequestInfo<'_>,
    check_path: bool,
    best: &mut Best<'t>,
) {
    for entry in list {
        if !best.beaten_by(entry) {
            return;
        }
        let path_ok = !check_path || entry.path.matches(request.path);
        if path_ok && entry.route.conditions_hold(request) {
            best.0 = Some(entry);
            return;
        }
    }
}
