//! PINs: held in `secrecy` types, zeroized on drop, never shown.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A token PIN (user or security officer). Debug and Display print only `Pin(***)`.
pub struct Pin(SecretString);

impl Pin {
    /// Wraps a PIN read from a terminal or a request body.
    pub fn new(pin: impl Into<String>) -> Self {
        Self(SecretString::from(pin.into()))
    }

    /// Wraps a PIN that is already secret (from the device helper's wire).
    pub(crate) fn from_secret(pin: SecretString) -> Self {
        Self(pin)
    }

    /// Length in characters, for policy checks.
    pub fn len(&self) -> usize {
        self.0.expose_secret().chars().count()
    }

    /// True for an empty PIN.
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }

    /// True when both PINs are the same text (for "enter it again" checks).
    pub fn same_as(&self, other: &Pin) -> bool {
        self.0.expose_secret() == other.0.expose_secret()
    }

    /// The secret, for handing to cryptoki only.
    pub(crate) fn auth(&self) -> &SecretString {
        &self.0
    }
}

impl From<String> for Pin {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin(***)")
    }
}

impl fmt::Display for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Pin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Pin::new)
    }
}
