//! Persistence: one directory per slot holding `state.json`, guarded by `flock` on `lock`.
//!
//! Every operation re-reads the state, so changes by other processes (objects, PINs,
//! eject) are seen at once. Writes go to a temporary file renamed into place.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::crypto::{Sealed, Wrapped};

/// One stored object: its attributes, plus a sealed private value for private keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Obj {
    /// Object handle, stable across processes.
    pub handle: u64,
    /// Attributes by CKA_* code (never a private key's CKA_VALUE).
    pub attrs: BTreeMap<u64, Vec<u8>>,
    /// Private scalar sealed under the token key (private keys only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Sealed>,
    /// Public point 04‖x‖y kept beside a private key for verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<Vec<u8>>,
}

/// An initialized token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenData {
    /// Label (≤ 32 bytes).
    pub label: String,
    /// Token key wrapped by the SO PIN.
    pub so_wrap: Wrapped,
    /// Token key wrapped by the user PIN, once C_InitPIN ran.
    pub user_wrap: Option<Wrapped>,
    /// Consecutive wrong user PINs.
    pub user_fails: u32,
    /// Consecutive wrong SO PINs.
    pub so_fails: u32,
    /// Next object handle.
    pub next_handle: u64,
    /// Token objects.
    pub objects: Vec<Obj>,
}

/// Everything persisted about one slot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlotState {
    /// Token serial number (its identity).
    pub serial: String,
    /// False while ejected.
    pub present: bool,
    /// Bumped on every eject: sessions and logins of an older epoch are dead.
    pub epoch: u64,
    /// None until C_InitToken.
    pub token: Option<TokenData>,
}

/// The store directory.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

struct Lock(File);

impl Lock {
    fn take(path: &Path, exclusive: bool) -> std::io::Result<Lock> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        loop {
            // SAFETY: flock on a file descriptor we own.
            let rc = unsafe { libc::flock(f.as_raw_fd(), op) };
            if rc == 0 {
                return Ok(Lock(f));
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: unlocking our own descriptor (closing would unlock too).
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

/// A held device lock (a UKey does one thing at a time, whoever asks).
#[derive(Debug)]
pub struct DeviceGuard(#[allow(dead_code)] Lock);

impl std::fmt::Debug for Lock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lock")
    }
}

impl Store {
    /// Opens (creating if needed) a store with `slots` slots; `serial_for` may fix serials.
    pub fn open(
        root: &Path,
        slots: u64,
        serial_for: impl Fn(u64) -> Option<String>,
    ) -> std::io::Result<Store> {
        std::fs::create_dir_all(root)?;
        let store = Store {
            root: root.to_path_buf(),
        };
        for slot in 0..slots {
            let dir = store.dir(slot);
            std::fs::create_dir_all(&dir)?;
            let _l = Lock::take(&dir.join("lock"), true)?;
            if !dir.join("state.json").exists() {
                let serial = serial_for(slot).unwrap_or_else(|| {
                    let r = crate::crypto::random(8);
                    hex::encode_upper(r)
                });
                let st = SlotState {
                    serial,
                    present: true,
                    epoch: 1,
                    token: None,
                };
                write_state(&dir, &st)?;
            }
        }
        Ok(store)
    }

    fn dir(&self, slot: u64) -> PathBuf {
        self.root.join(format!("slot-{slot}"))
    }

    /// Reads a slot's state under a shared lock.
    pub fn read(&self, slot: u64) -> std::io::Result<SlotState> {
        let dir = self.dir(slot);
        let _l = Lock::take(&dir.join("lock"), false)?;
        read_state(&dir)
    }

    /// Reads, changes and writes a slot's state under an exclusive lock.
    pub fn update<R>(&self, slot: u64, f: impl FnOnce(&mut SlotState) -> R) -> std::io::Result<R> {
        let dir = self.dir(slot);
        let _l = Lock::take(&dir.join("lock"), true)?;
        let mut st = read_state(&dir)?;
        let r = f(&mut st);
        write_state(&dir, &st)?;
        Ok(r)
    }

    /// Slot index holding the token with this serial.
    pub fn find_serial(&self, slots: u64, serial: &str) -> Option<u64> {
        (0..slots).find(|s| {
            self.read(*s)
                .map(|st| st.serial.trim() == serial.trim())
                .unwrap_or(false)
        })
    }

    /// Takes the device lock of a slot (blocks while another operation holds it).
    pub fn device(&self, slot: u64) -> std::io::Result<DeviceGuard> {
        Ok(DeviceGuard(Lock::take(
            &self.dir(slot).join("device.lock"),
            true,
        )?))
    }
}

fn read_state(dir: &Path) -> std::io::Result<SlotState> {
    let text = std::fs::read(dir.join("state.json"))?;
    serde_json::from_slice(&text)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

fn write_state(dir: &Path, st: &SlotState) -> std::io::Result<()> {
    let tmp = dir.join("state.json.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(&serde_json::to_vec(st).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(tmp, dir.join("state.json"))
}
