//! A small string map for trigger metadata and secrets.
//!
//! Every running trigger keeps its metadata for as long as it runs. A `BTreeMap` stores even
//! two keys in a node sized for eleven (about 540 bytes); at 100,000 triggers that was a
//! tenth of the controller's memory. Here the pairs sit sorted in one vector of exactly
//! their number. Lookups are a binary search; inserts are rare (while a trigger is resolved).

use std::collections::BTreeMap;

/// String keys to string values, sorted by key, each key once. Iterates in key order, like
/// the `BTreeMap` it replaces.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct StringMap {
    pairs: Vec<(String, String)>,
}

impl StringMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.pairs
            .binary_search_by(|(existing, _)| existing.as_str().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&String> {
        self.position(key).ok().map(|index| &self.pairs[index].1)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`, returning the value it replaced.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        match self.position(&key) {
            Ok(index) => Some(std::mem::replace(&mut self.pairs[index].1, value)),
            Err(index) => {
                self.pairs.reserve_exact(1);
                self.pairs.insert(index, (key, value));
                None
            }
        }
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let index = self.position(key).ok()?;
        Some(self.pairs.remove(index).1)
    }

    /// The pairs in key order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            inner: self.pairs.iter(),
        }
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.pairs.iter().map(|(key, _)| key)
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &String> {
        self.pairs.iter().map(|(_, value)| value)
    }
}

/// Iterator over a [`StringMap`]'s pairs, in key order.
#[derive(Clone, Debug)]
pub struct Iter<'a> {
    inner: std::slice::Iter<'a, (String, String)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a String, &'a String);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(key, value)| (key, value))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for Iter<'_> {}

impl<'a> IntoIterator for &'a StringMap {
    type Item = (&'a String, &'a String);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

impl IntoIterator for StringMap {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.pairs.into_iter()
    }
}

impl FromIterator<(String, String)> for StringMap {
    /// As for a `BTreeMap`, a key given twice keeps its last value.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut pairs: Vec<(String, String)> = pairs.into_iter().collect();
        // Stable: equal keys stay in the order given, so the last one is the last of its run.
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut unique: Vec<(String, String)> = Vec::with_capacity(pairs.len());
        for pair in pairs {
            match unique.last_mut() {
                Some(last) if last.0 == pair.0 => *last = pair,
                _ => unique.push(pair),
            }
        }
        unique.shrink_to_fit();
        Self { pairs: unique }
    }
}

impl Extend<(String, String)> for StringMap {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl From<BTreeMap<String, String>> for StringMap {
    fn from(map: BTreeMap<String, String>) -> Self {
        // Already sorted and unique.
        Self {
            pairs: map.into_iter().collect(),
        }
    }
}

impl<const N: usize> From<[(String, String); N]> for StringMap {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl std::fmt::Debug for StringMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &str, value: &str) -> (String, String) {
        (key.to_owned(), value.to_owned())
    }

    #[test]
    fn behaves_as_an_ordered_map_with_the_last_value_winning() {
        let mut map: StringMap = [pair("queue", "a"), pair("host", "h"), pair("queue", "b")]
            .into_iter()
            .collect();
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("queue").map(String::as_str), Some("b"));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["host", "queue"]);
        assert_eq!(map.insert("mode".into(), "m".into()), None);
        assert_eq!(map.insert("host".into(), "h2".into()).as_deref(), Some("h"));
        assert_eq!(map.keys().collect::<Vec<_>>(), ["host", "mode", "queue"]);
        assert!(map.contains_key("mode"));
        assert_eq!(map.remove("mode").as_deref(), Some("m"));
        assert!(!map.contains_key("mode"));
        assert_eq!(format!("{map:?}"), r#"{"host": "h2", "queue": "b"}"#);

        let tree: BTreeMap<String, String> = map.clone().into_iter().collect();
        assert_eq!(StringMap::from(tree), map);
    }

    #[test]
    fn holds_exactly_its_pairs() {
        let map: StringMap = (0..3).map(|n| pair(&format!("k{n}"), "v")).collect();
        assert_eq!(map.pairs.capacity(), 3);
        let mut grown = map.clone();
        grown.insert("k9".into(), "v".into());
        assert_eq!(grown.pairs.capacity(), grown.len());
    }
}
