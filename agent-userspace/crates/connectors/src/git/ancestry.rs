//! Proving a fast-forward from the commits of a pack: `new` reaches `old` by parent links.

use super::oid::ObjectId;
use std::collections::{HashMap, HashSet, VecDeque};

/// Whether following parents from `new` through commits of `parents` reaches `old`.
///
/// Only commits present in the map can be followed; a path through a commit the server
/// already has (and the client therefore did not send) cannot be seen, so the answer is then
/// `false`: "not proven", never "proven wrongly". The walk visits each commit once, so it is
/// bounded by the size of the map.
pub(crate) fn reaches(
    parents: &HashMap<ObjectId, Vec<ObjectId>>,
    new: &ObjectId,
    old: &ObjectId,
) -> bool {
    if new == old {
        return true;
    }
    let mut seen: HashSet<&ObjectId> = HashSet::new();
    let mut queue: VecDeque<&ObjectId> = VecDeque::from([new]);
    while let Some(id) = queue.pop_front() {
        let Some(ps) = parents.get(id) else {
            continue;
        };
        for p in ps {
            if p == old {
                return true;
            }
            if seen.insert(p) {
                queue.push_back(p);
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::oid::HashKind;

    fn id(c: char) -> ObjectId {
        ObjectId::from_hex(c.to_string().repeat(40).as_bytes(), HashKind::Sha1).unwrap()
    }

    #[test]
    fn a_chain_through_the_pack_reaches_old() {
        // c -> b -> a(old, not in the pack)
        let map = HashMap::from([(id('c'), vec![id('b')]), (id('b'), vec![id('a')])]);
        assert!(reaches(&map, &id('c'), &id('a')));
        assert!(!reaches(&map, &id('a'), &id('c')));
    }

    #[test]
    fn a_second_parent_counts_and_a_gap_does_not_prove() {
        // merge e has parents d (not in pack) and b; b -> a
        let map = HashMap::from([(id('e'), vec![id('d'), id('b')]), (id('b'), vec![id('a')])]);
        assert!(reaches(&map, &id('e'), &id('a')));
        // f's parent d is not in the pack: whether d descends from a is unknown
        let map = HashMap::from([(id('f'), vec![id('d')])]);
        assert!(!reaches(&map, &id('f'), &id('a')));
    }

    #[test]
    fn cycles_terminate() {
        let map = HashMap::from([(id('b'), vec![id('c')]), (id('c'), vec![id('b')])]);
        assert!(!reaches(&map, &id('b'), &id('a')));
    }
}
