//! The precedence of route entries: one global rank per (host pattern × path condition) of a
//! route, from the precedence order: higher `priority`; more specific host (exact, then longer
//! wildcard suffix, then any host); exact path, then longer prefix, then regex; a method condition
//! over none; more header conditions; more query conditions; older route; name. Deterministic, so
//! every worker picks the same route.

use std::cmp::{Ordering, Reverse};
use std::sync::Arc;

use super::matcher::PathCond;
use super::route::CompiledRoute;

/// Precedence of an entry without its route's name; smaller wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Rank {
    pub(super) priority: Reverse<i32>,
    pub(super) host: (u8, Reverse<usize>),
    pub(super) path: (u8, Reverse<usize>),
    pub(super) any_method: bool,
    pub(super) headers: Reverse<usize>,
    pub(super) query: Reverse<usize>,
    pub(super) created: i64,
}

/// One (host pattern × path condition) of a route.
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) rank: Rank,
    pub(super) path: PathCond,
    pub(super) route: Arc<CompiledRoute>,
    /// Position among the route's own entries: the last tie-break.
    pub(super) order: u32,
}

impl Entry {
    /// Rank, then route name (older first is already in the rank), then the entry's order.
    pub(super) fn cmp_precedence(&self, other: &Entry) -> Ordering {
        self.rank
            .cmp(&other.rank)
            .then_with(|| self.route.name.cmp(&other.route.name))
            .then(self.order.cmp(&other.order))
    }

    #[inline]
    pub(super) fn precedes(&self, other: &Entry) -> bool {
        self.cmp_precedence(other) == Ordering::Less
    }
}

/// Entries are shared between the tables of successive revisions.
pub(super) type Slot = Arc<Entry>;

/// Inserts into a list kept in precedence order; appending is the common case in a full build.
pub(super) fn insert_sorted(list: &mut Vec<Slot>, slot: Slot) {
    let at = list.partition_point(|e| e.precedes(&slot));
    list.insert(at, slot);
}

/// Inserts many entries into a list kept in precedence order with one merge, in time linear in
/// the list rather than one shift of it per entry.
pub(super) fn insert_all_sorted(list: &mut Vec<Slot>, mut slots: Vec<Slot>) {
    if slots.len() <= 1 {
        if let Some(slot) = slots.pop() {
            insert_sorted(list, slot);
        }
        return;
    }
    slots.sort_by(|a, b| a.cmp_precedence(b));
    let old = std::mem::take(list);
    let mut merged = Vec::with_capacity(old.len() + slots.len());
    let mut old = old.into_iter().peekable();
    let mut new = slots.into_iter().peekable();
    while let (Some(a), Some(b)) = (old.peek(), new.peek()) {
        let next = if b.precedes(a) {
            new.next()
        } else {
            old.next()
        };
        merged.extend(next);
    }
    merged.extend(old);
    merged.extend(new);
    *list = merged;
}

/// The best entry found so far.
pub(super) struct Best<'t>(pub(super) Option<&'t Entry>);

impl Best<'_> {
    #[inline]
    pub(super) fn beaten_by(&self, entry: &Entry) -> bool {
        self.0.is_none_or(|best| entry.precedes(best))
    }
}
