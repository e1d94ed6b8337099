//! SCAN cursors: keys of up to 7 bytes are encoded in the cursor number itself; longer ones
//! are remembered in a bounded table.

use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Mutex;

use kv_core::command::Key;

use super::command::CommandError;

/// SCAN cursors that stand for a key too long to encode in a number, and are remembered here.
/// Numbered from here up, above every encodable cursor.
const CURSOR_TABLE_BASE: u64 = 1 << 62;
/// The SCAN cursors one connection has handed out: another client cannot evict them, and the
/// oldest are forgotten first once `capacity` are remembered.
#[derive(Debug)]
pub(super) struct CursorTable {
    capacity: usize,
    cursors: Mutex<Cursors>,
}

#[derive(Debug, Default)]
struct Cursors {
    keys: HashMap<u64, Key>,
    order: VecDeque<u64>,
    next: u64,
}

impl CursorTable {
    /// An empty table remembering at most `capacity` cursors.
    pub(super) fn new(capacity: usize) -> Self {
        CursorTable {
            capacity,
            cursors: Mutex::default(),
        }
    }

    /// A SCAN cursor standing for "after `key`": keys of up to 7 bytes are encoded in the
    /// number itself (a 0x01 byte, then the key, read as a big-endian integer); longer keys
    /// get a number from the cursor table.
    pub(super) fn cursor_for(&self, key: &[u8]) -> String {
        if key.len() <= 7 {
            let value = key.iter().fold(1u64, |n, &b| (n << 8) | u64::from(b));
            return value.to_string();
        }
        let mut table = self.cursors.lock().expect("cursor table lock poisoned");
        let id = CURSOR_TABLE_BASE + table.next;
        table.next += 1;
        table.keys.insert(id, key.to_vec());
        table.order.push_back(id);
        if table.order.len() > self.capacity
            && let Some(old) = table.order.pop_front()
        {
            table.keys.remove(&old);
        }
        id.to_string()
    }

    /// The key a cursor stands for: `None` for `0` (start).
    pub(super) fn cursor_key(&self, cursor: &[u8]) -> Result<Option<Key>, CommandError> {
        let value: u64 = std::str::from_utf8(cursor)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(CommandError::InvalidCursor)?;
        if value == 0 {
            return Ok(None);
        }
        if value >= CURSOR_TABLE_BASE {
            let table = self.cursors.lock().expect("cursor table lock poisoned");
            return table
                .keys
                .get(&value)
                .cloned()
                .map(Some)
                .ok_or(CommandError::InvalidCursor);
        }
        let bytes = value.to_be_bytes();
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(7);
        match &bytes[start..] {
            [1, key @ ..] => Ok(Some(key.to_vec())),
            _ => Err(CommandError::InvalidCursor),
        }
    }
}
