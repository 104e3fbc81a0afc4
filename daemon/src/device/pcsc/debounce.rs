//! Debouncing: the watcher waits until readers have been quiet for the window, then compares
//! the settled state with the last one it reported. Whatever happened in between (a UKey going
//! present → mute → present while its chip boots, a reader re-enumerating) collapses into the
//! difference between the two states.

use std::collections::BTreeMap;

/// A card as seen in one settled state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenCard {
    /// Its ATR.
    pub atr: Vec<u8>,
    /// pcscd's per-reader insert/remove counter when it was seen.
    pub count: u32,
}

/// Reader name → the card in it (None: empty), in one settled state.
pub type Seen = BTreeMap<String, Option<SeenCard>>;

/// One difference between two settled states, in the order it must be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new reader.
    ReaderAdded(String),
    /// A card appeared in a reader.
    CardInserted(String, Vec<u8>),
    /// A card left a reader (also reported before a reader with a card goes away).
    CardRemoved(String, Vec<u8>),
    /// A reader went away.
    ReaderRemoved(String),
}

/// The changes from `old` to `new`. A card present in both with another ATR or another event
/// count was pulled and plugged again inside the window: that is a removal then an insertion,
/// because the token's sessions and login did not survive it.
pub fn diff(old: &Seen, new: &Seen) -> Vec<Change> {
    let mut changes = Vec::new();
    for (reader, card) in old {
        if !new.contains_key(reader) {
            if let Some(card) = card {
                changes.push(Change::CardRemoved(reader.clone(), card.atr.clone()));
            }
            changes.push(Change::ReaderRemoved(reader.clone()));
        }
    }
    for (reader, card) in new {
        let before = match old.get(reader) {
            None => {
                changes.push(Change::ReaderAdded(reader.clone()));
                &None
            }
            Some(before) => before,
        };
        match (before, card) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                changes.push(Change::CardRemoved(reader.clone(), a.atr.clone()));
                changes.push(Change::CardInserted(reader.clone(), b.atr.clone()));
            }
            (None, Some(b)) => changes.push(Change::CardInserted(reader.clone(), b.atr.clone())),
            (Some(a), None) => changes.push(Change::CardRemoved(reader.clone(), a.atr.clone())),
            (None, None) => {}
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    type Entry<'a> = (&'a str, Option<(&'a [u8], u32)>);

    fn seen(entries: &[Entry<'_>]) -> Seen {
        entries
            .iter()
            .map(|(r, c)| {
                (
                    r.to_string(),
                    c.map(|(atr, count)| SeenCard {
                        atr: atr.to_vec(),
                        count,
                    }),
                )
            })
            .collect()
    }

    #[test]
    fn settled_states_collapse_to_their_difference() {
        let empty = seen(&[("r0", None)]);
        let card = seen(&[("r0", Some((&[0x3B, 1], 1)))]);
        assert_eq!(diff(&empty, &empty), vec![]);
        assert_eq!(
            diff(&empty, &card),
            vec![Change::CardInserted("r0".into(), vec![0x3B, 1])]
        );
        assert_eq!(
            diff(&card, &empty),
            vec![Change::CardRemoved("r0".into(), vec![0x3B, 1])]
        );
        // Pulled and plugged back inside one window: a removal and an insertion.
        let again = seen(&[("r0", Some((&[0x3B, 1], 3)))]);
        assert_eq!(
            diff(&card, &again),
            vec![
                Change::CardRemoved("r0".into(), vec![0x3B, 1]),
                Change::CardInserted("r0".into(), vec![0x3B, 1])
            ]
        );
    }

    #[test]
    fn readers_come_and_go_with_their_cards() {
        let none = Seen::new();
        let card = seen(&[("r0", Some((&[0x3B], 1)))]);
        assert_eq!(
            diff(&none, &card),
            vec![
                Change::ReaderAdded("r0".into()),
                Change::CardInserted("r0".into(), vec![0x3B])
            ]
        );
        assert_eq!(
            diff(&card, &none),
            vec![
                Change::CardRemoved("r0".into(), vec![0x3B]),
                Change::ReaderRemoved("r0".into())
            ]
        );
    }
}
