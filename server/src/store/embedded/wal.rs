//! The embedded store's write-ahead log: an append-only file of checksummed records, each
//! holding the messages of one group commit. It exists so an ack can wait for one small
//! sequential write and `fdatasync` instead of a redb commit (which rewrites every B-tree page
//! it touched and holds redb's write lock through the fsync): redb takes the same messages
//! without fsync, and a periodic checkpoint (a durable redb commit) lets the log start over.
//!
//! On disk a record is `[payload length: u32 LE][first 8 bytes of SHA-256(payload)][payload]`,
//! the payload a run of `[entry length: u32 LE][entry]`. Reading stops at the first record that
//! is short or fails its checksum: a torn write at a crash, never acked (acks wait for the
//! `fdatasync` of the whole record).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const LEN: usize = 4;
const SUM: usize = 8;
const HEADER: usize = LEN + SUM;
/// A longer length than this is damage, not a record (a batch is at most a few MiB).
const MAX_PAYLOAD: usize = 256 << 20;

/// One record being built: entries are appended, `finish` seals it.
pub struct Record {
    buf: Vec<u8>,
}

impl Default for Record {
    fn default() -> Self {
        Self::new()
    }
}

impl Record {
    pub fn new() -> Self {
        Self {
            buf: vec![0; HEADER],
        }
    }

    pub fn push(&mut self, entry: &[u8]) {
        let len = u32::try_from(entry.len()).expect("a log entry under 4 GiB");
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(entry);
    }

    /// No entry pushed: nothing to write.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER
    }

    /// The record's bytes as they go to the file.
    pub fn finish(mut self) -> Vec<u8> {
        let payload_len = self.buf.len() - HEADER;
        let len = u32::try_from(payload_len).expect("a log record under 4 GiB");
        let sum = checksum(&self.buf[HEADER..]);
        self.buf[..LEN].copy_from_slice(&len.to_le_bytes());
        self.buf[LEN..HEADER].copy_from_slice(&sum);
        self.buf
    }
}

fn checksum(payload: &[u8]) -> [u8; SUM] {
    let digest = Sha256::digest(payload);
    let mut sum = [0; SUM];
    sum.copy_from_slice(&digest[..SUM]);
    sum
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The entries of every whole, intact record at the start of `bytes`, in order, and how many
/// bytes those records span (anything after is a torn or damaged tail).
pub fn decode(bytes: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut entries = Vec::new();
    let mut at = 0;
    while let Some(len) = u32_at(bytes, at) {
        if len > MAX_PAYLOAD {
            break;
        }
        let Some(payload) = bytes.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        if checksum(payload) != bytes[at + LEN..at + HEADER] {
            break;
        }
        let mut record = Vec::new();
        let mut p = 0;
        let mut whole = true;
        while p < payload.len() {
            let entry = u32_at(payload, p).and_then(|n| payload.get(p + 4..p + 4 + n));
            let Some(entry) = entry else {
                whole = false;
                break;
            };
            p += 4 + entry.len();
            record.push(entry);
        }
        if !whole {
            break;
        }
        entries.extend(record);
        at += HEADER + len;
    }
    (entries, at)
}

/// The open log file.
pub struct Log {
    file: File,
    path: PathBuf,
}

impl Log {
    /// Opens (creating) the log at `path`; returns it with its whole contents.
    pub fn open(path: &Path) -> io::Result<(Self, Vec<u8>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        // The file itself must survive a crash once records in it are acked.
        if let Some(dir) = path.parent() {
            File::open(dir)?.sync_all()?;
        }
        let log = Self {
            file,
            path: path.to_path_buf(),
        };
        Ok((log, bytes))
    }

    /// Appends sealed records and waits until they are on disk.
    pub fn append(&mut self, records: &[u8]) -> io::Result<()> {
        self.file.write_all(records)?;
        self.file.sync_data()
    }

    /// Empties the log (everything in it is durable elsewhere), on disk before returning.
    pub fn clear(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        self.file.sync_all()
    }

    /// Where the log lives (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(entries: &[&[u8]]) -> Vec<u8> {
        let mut r = Record::new();
        for e in entries {
            r.push(e);
        }
        r.finish()
    }

    #[test]
    fn records_read_back_in_order() {
        let mut bytes = record(&[b"one", b"", b"three"]);
        bytes.extend(record(&[b"four"]));
        let (entries, len) = decode(&bytes);
        assert_eq!(entries, [&b"one"[..], b"", b"three", b"four"]);
        assert_eq!(len, bytes.len());
    }

    #[test]
    fn a_torn_or_damaged_tail_is_left_out_whole() {
        let first = record(&[b"kept"]);
        let second = record(&[b"torn", b"record"]);
        for cut in 0..second.len() {
            let mut bytes = first.clone();
            bytes.extend_from_slice(&second[..cut]);
            let (entries, len) = decode(&bytes);
            assert_eq!(entries, [&b"kept"[..]], "cut at {cut}");
            assert_eq!(len, first.len());
        }
        for flip in 0..second.len() {
            let mut bytes = first.clone();
            let mut damaged = second.clone();
            damaged[flip] ^= 0x40;
            bytes.extend(damaged);
            let (entries, _) = decode(&bytes);
            assert_eq!(entries, [&b"kept"[..]], "byte {flip} flipped");
        }
    }

    #[test]
    fn an_empty_record_is_empty() {
        assert!(Record::new().is_empty());
        let bytes = record(&[]);
        let (entries, len) = decode(&bytes);
        assert!(entries.is_empty());
        assert_eq!(len, HEADER);
    }

    #[test]
    fn the_file_appends_and_clears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.wal");
        let (mut log, bytes) = Log::open(&path).unwrap();
        assert!(bytes.is_empty());
        log.append(&record(&[b"a"])).unwrap();
        log.append(&record(&[b"b"])).unwrap();
        drop(log);
        let (mut log, bytes) = Log::open(&path).unwrap();
        assert_eq!(decode(&bytes).0, [&b"a"[..], b"b"]);
        log.clear().unwrap();
        log.append(&record(&[b"c"])).unwrap();
        drop(log);
        let (_, bytes) = Log::open(&path).unwrap();
        assert_eq!(decode(&bytes).0, [&b"c"[..]]);
    }
}
