//! What the watcher tells the rest of the daemon: events (for server-sent events and the usage
//! log) and the current reader list (for `sealctl devices` and the API).

use serde::Serialize;

use crate::device::DeviceModel;

/// A change seen through PC/SC, after debouncing. Serialised with an `event` tag, e.g.
/// `{"event":"card-removed","reader":"…","atr":"3B …","module":"ukey","tokens":["…"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum DeviceEvent {
    /// A reader appeared (plugged in, or pcscd came up with it).
    ReaderAdded {
        /// Reader name as pcscd gives it.
        reader: String,
    },
    /// A reader went away.
    ReaderRemoved {
        /// Reader name.
        reader: String,
    },
    /// A card (UKey) was inserted; `card` says what the ATR table made of it.
    CardInserted {
        /// Reader name.
        reader: String,
        /// The card as identified.
        card: CardReport,
    },
    /// A card was removed; the owners of `card.tokens` were reset (logged out, sessions dropped).
    CardRemoved {
        /// Reader name.
        reader: String,
        /// The card that was there.
        card: CardReport,
    },
    /// pcscd cannot be reached: hot-plug events stop, PKCS#11 tokens are still served.
    PcscUnavailable {
        /// Why, in words.
        reason: String,
    },
    /// pcscd is reachable (again).
    PcscAvailable,
}

/// A card in a reader and what it maps to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardReport {
    /// The ATR, upper-case hex with spaces.
    pub atr: String,
    /// The matching `[[atr]]` entry's name, if any entry matched.
    pub name: Option<String>,
    /// The module the card's tokens live in, if an entry matched.
    pub module: Option<String>,
    /// The profile the entry names.
    pub profile: Option<String>,
    /// The device model (entry's, else the module's).
    pub model: Option<DeviceModel>,
    /// Serial numbers of the tokens this card became (on removal: the tokens reset).
    pub tokens: Vec<String>,
}

/// One reader and its card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReaderReport {
    /// Reader name.
    pub reader: String,
    /// The card in it, if any.
    pub card: Option<CardReport>,
}

/// Whether the watcher reaches pcscd.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PcscStatus {
    /// Not connected yet.
    #[default]
    Starting,
    /// pcscd answers: readers are watched (or were read, for a snapshot).
    Available,
    /// pcscd is not running (or stopped); retrying in the background.
    Unavailable,
    /// The watcher was turned off in the config or stopped.
    Off,
}

/// The PC/SC side of the device list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PcscReport {
    /// Whether pcscd is reachable.
    pub status: PcscStatus,
    /// Why not, when it is not.
    pub error: Option<String>,
    /// Readers and their cards.
    pub readers: Vec<ReaderReport>,
}
