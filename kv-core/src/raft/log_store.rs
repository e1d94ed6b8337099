//! An in-memory Raft log store, used by the simulator.
//!
//! Everything it holds counts as durable: the simulator keeps a crashed node's [`MemLogStore`]
//! and hands it to the restarted node, as a disk would keep its files. Appends are reported
//! flushed at once.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::io;
use std::ops::RangeBounds;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;

use openraft::LogState;
use openraft::OptionalSend;
use openraft::RaftLogReader;
use openraft::alias::EntryOf;
use openraft::alias::LogIdOf;
use openraft::alias::VoteOf;
use openraft::entry::RaftEntry;
use openraft::storage::IOFlushed;
use openraft::storage::RaftLogStorage;

use super::KvTypeConfig;

/// The log, vote and committed id of one node. Clones share the same data.
#[derive(Debug)]
pub struct MemLogStore<C: KvTypeConfig> {
    inner: Arc<Mutex<LogData<C>>>,
}

impl<C: KvTypeConfig> Clone for MemLogStore<C> {
    fn clone(&self) -> Self {
        MemLogStore {
            inner: self.inner.clone(),
        }
    }
}

impl<C: KvTypeConfig> Default for MemLogStore<C> {
    fn default() -> Self {
        MemLogStore {
            inner: Arc::new(Mutex::new(LogData::default())),
        }
    }
}

/// What a [`MemLogStore`] holds.
#[derive(Debug)]
pub struct LogData<C: KvTypeConfig> {
    /// The last purged log id.
    pub last_purged: Option<LogIdOf<C>>,
    /// Entries by index.
    pub entries: BTreeMap<u64, EntryOf<C>>,
    /// The last saved committed log id.
    pub committed: Option<LogIdOf<C>>,
    /// The last saved vote.
    pub vote: Option<VoteOf<C>>,
}

impl<C: KvTypeConfig> Default for LogData<C> {
    fn default() -> Self {
        LogData {
            last_purged: None,
            entries: BTreeMap::new(),
            committed: None,
            vote: None,
        }
    }
}

impl<C: KvTypeConfig> MemLogStore<C> {
    /// Read access to the stored data (for inspection by the simulator and its checkers).
    pub fn data(&self) -> MutexGuard<'_, LogData<C>> {
        // A poisoned lock means a panic while holding it: a bug, not an input error.
        self.inner.lock().expect("log store lock poisoned")
    }
}

impl<C: KvTypeConfig> RaftLogReader<C> for MemLogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        Ok(self.data().entries.range(range).map(|(_, e)| e.clone()).collect())
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.data().vote.clone())
    }
}

impl<C: KvTypeConfig> RaftLogStorage<C> for MemLogStore<C> {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let data = self.data();
        let last = data
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id())
            .or_else(|| data.last_purged);
        Ok(LogState {
            last_purged_log_id: data.last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        self.data().vote = Some(vote.clone());
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.data().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        Ok(self.data().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut data = self.data();
        for entry in entries {
            let index = entry.index();
            if let Some((&last, _)) = data.entries.last_key_value() {
                assert_eq!(index, last + 1, "append must not leave a hole in the log");
            }
            data.entries.insert(index, entry);
        }
        drop(data);
        callback.io_completed(Ok(()));
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let first_removed = last_log_id.map_or(0, |id| id.index + 1);
        self.data().entries.split_off(&first_removed);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let mut data = self.data();
        assert!(data.last_purged.as_ref() <= Some(&log_id), "purge must move forward");
        let kept = data.entries.split_off(&(log_id.index + 1));
        data.entries = kept;
        data.last_purged = Some(log_id);
        Ok(())
    }
}
