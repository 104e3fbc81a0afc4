//! Fast SM2 and ECDSA P-256 verification with precomputed tables of fixed points.
//!
//! A [`Table`] for a point P holds, for every window i of W bits, the affine points
//! j·2^(W·i)·P for j = 1..=2^(W-1). A scalar is recoded into signed digits in
//! [-(2^(W-1) - 1), 2^(W-1)], so k·P is a sum of one table entry (or its negation) per window:
//! no doublings, about 256/W mixed additions. The generator's tables (W = 8, ~297 KiB per curve)
//! are built once per process; a cached key's table (W = 5) takes 52 × 16 affine points,
//! 58.5 KiB.
//!
//! Verification handles only public data, so this code is variable-time. Point additions use
//! the complete formulas of `primeorder`, exact for every input (identity, doubling, inverse).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use primeorder::elliptic_curve::group::Group;
use primeorder::elliptic_curve::ops::{Invert, Reduce};
use primeorder::elliptic_curve::point::{AffineCoordinates, BatchNormalize};
use primeorder::elliptic_curve::subtle::CtOption;
use primeorder::elliptic_curve::Field;
use primeorder::{AffinePoint, FieldBytes, PrimeCurveParams, PrimeField, ProjectivePoint};

use super::verify::VerifyError;

/// Scalars of both curves are 256 bits.
const BITS: usize = 256;

/// Entries per window of a cached key's table (W = 5).
pub(crate) const KEY_ROW: usize = 16;
/// Entries per window of a generator table (W = 8).
const G_ROW: usize = 128;

/// Precomputed multiples of one fixed point; `ROW` = 2^(W-1) entries per W-bit window.
#[derive(Clone)]
pub struct Table<C: PrimeCurveParams, const ROW: usize> {
    rows: Box<[[AffinePoint<C>; ROW]]>,
}

impl<C: PrimeCurveParams, const ROW: usize> std::fmt::Debug for Table<C, ROW> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("windows", &self.rows.len())
            .field("row", &ROW)
            .finish()
    }
}

impl<C: FastCurve, const ROW: usize> Table<C, ROW> {
    /// Window width W in bits.
    const WIDTH: usize = ROW.trailing_zeros() as usize + 1;
    /// Windows per scalar: one more than fit in `BITS`, for the last carry of the recoding.
    const WINDOWS: usize = BITS / Self::WIDTH + 1;

    /// Builds the table for `point`.
    pub fn new(point: &ProjectivePoint<C>) -> Self {
        assert!(ROW.is_power_of_two() && (1..=128).contains(&ROW));
        let mut points = Vec::with_capacity(Self::WINDOWS * ROW);
        let mut base = *point; // 2^(W·i)·P
        for _ in 0..Self::WINDOWS {
            let mut acc = base;
            for _ in 0..ROW {
                points.push(acc);
                acc += &base;
            }
            // 2^W · base = 2 · (2^(W-1) · base).
            base = Group::double(&points[points.len() - 1]);
        }
        let affine = C::normalize(&points);
        let rows: Vec<[AffinePoint<C>; ROW]> = affine
            .chunks_exact(ROW)
            .map(|row| row.try_into().expect("rows of ROW points"))
            .collect();
        Self {
            rows: rows.into_boxed_slice(),
        }
    }

    /// Bytes of heap memory the table takes.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of_val(&*self.rows)
    }

    /// Adds k·P to `acc`.
    fn mul_add(&self, k: &C::Scalar, acc: &mut ProjectivePoint<C>) {
        let digits = recode(&k.to_repr(), Self::WIDTH);
        for (row, &d) in self.rows.iter().zip(digits.iter()) {
            match d {
                0 => {}
                d if d > 0 => *acc += &row[d as usize - 1],
                d => *acc += -row[(-d) as usize - 1],
            }
        }
    }
}

/// A key's table, built on the key's [`FastCurve::TABLE_AFTER`]-th verification: keys seen
/// once or twice (say, a signer of a document under inspection) skip the cost of building it.
pub struct LazyTable<C: PrimeCurveParams> {
    cell: OnceLock<Table<C, KEY_ROW>>,
    uses: AtomicU32,
}

impl<C: PrimeCurveParams> std::fmt::Debug for LazyTable<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyTable")
            .field("built", &self.cell.get().is_some())
            .finish()
    }
}

impl<C: FastCurve> Default for LazyTable<C> {
    fn default() -> Self {
        Self {
            cell: OnceLock::new(),
            uses: AtomicU32::new(0),
        }
    }
}

impl<C: FastCurve> LazyTable<C> {
    /// A table built now for `point`.
    pub fn built(point: &ProjectivePoint<C>) -> Self {
        let lazy = Self::default();
        let _ = lazy.cell.set(Table::new(point));
        lazy
    }

    /// Whether the table is built.
    pub fn is_built(&self) -> bool {
        self.cell.get().is_some()
    }

    /// The key point for one verification: the table once built (building it on this use
    /// if it is the [`FastCurve::TABLE_AFTER`]-th), else `point` itself.
    pub fn key_point<'a>(&'a self, point: &'a ProjectivePoint<C>) -> KeyPoint<'a, C> {
        if let Some(table) = self.cell.get() {
            return KeyPoint::Table(table);
        }
        if self.uses.fetch_add(1, Ordering::Relaxed).saturating_add(1) >= C::TABLE_AFTER {
            KeyPoint::Table(self.cell.get_or_init(|| Table::new(point)))
        } else {
            KeyPoint::Point(point)
        }
    }
}

/// Signed base-2^w digits of a big-endian 256-bit scalar, least significant first:
/// k = Σ dᵢ·2^(w·i), each dᵢ in [-(2^(w-1) - 1), 2^(w-1)].
fn recode(bytes: &[u8], w: usize) -> [i16; BITS + 1] {
    debug_assert_eq!(bytes.len() * 8, BITS);
    let bit = |i: usize| -> i16 {
        if i < BITS {
            ((bytes[bytes.len() - 1 - i / 8] >> (i % 8)) & 1) as i16
        } else {
            0
        }
    };
    let mut digits = [0i16; BITS + 1];
    let half = 1i16 << (w - 1);
    let mut carry = 0;
    for (i, digit) in digits.iter_mut().take(BITS / w + 1).enumerate() {
        let mut v = carry;
        for j in 0..w {
            v += bit(i * w + j) << j;
        }
        if v > half {
            *digit = v - (half << 1);
            carry = 1;
        } else {
            *digit = v;
            carry = 0;
        }
    }
    // The last window holds fewer than w bits of k, so it never carries.
    debug_assert_eq!(carry, 0);
    digits
}

/// A curve the fast verifier works on: how to normalise points, and its generator table.
pub trait FastCurve: PrimeCurveParams {
    /// The verification of a cached key that builds its table; later ones use it. Building
    /// costs as much as several verifications without it, so keys seen once skip it.
    const TABLE_AFTER: u32;

    /// The affine forms of `points`.
    fn normalize(points: &[ProjectivePoint<Self>]) -> Vec<AffinePoint<Self>>;

    /// The generator's table, built once per process.
    fn g_table() -> &'static Table<Self, G_ROW>;
}

impl FastCurve for sm2::Sm2 {
    /// A table takes ~0.7 ms to build (one batch inversion), the saving of ~4 verifications.
    const TABLE_AFTER: u32 = 2;

    /// One field inversion for the lot (Montgomery's trick, in `primeorder`).
    fn normalize(points: &[ProjectivePoint<Self>]) -> Vec<AffinePoint<Self>> {
        ProjectivePoint::<Self>::batch_normalize(points)
    }

    fn g_table() -> &'static Table<Self, G_ROW> {
        static G: OnceLock<Table<sm2::Sm2, G_ROW>> = OnceLock::new();
        G.get_or_init(|| Table::new(&ProjectivePoint::GENERATOR))
    }
}

impl FastCurve for p256::NistP256 {
    /// A table takes ~9 ms to build (one inversion per point), the saving of ~70
    /// verifications.
    const TABLE_AFTER: u32 = 32;

    /// One inversion per point: `p256`'s field elements lack the `Invert` that `primeorder`'s
    /// batch normalisation needs.
    fn normalize(points: &[ProjectivePoint<Self>]) -> Vec<AffinePoint<Self>> {
        points.iter().map(|p| p.to_affine()).collect()
    }

    fn g_table() -> &'static Table<Self, G_ROW> {
        static G: OnceLock<Table<p256::NistP256, G_ROW>> = OnceLock::new();
        G.get_or_init(|| Table::new(&ProjectivePoint::GENERATOR))
    }
}

/// The public key Q of a verification: with a table when cached, else just the point.
#[derive(Debug, Clone, Copy)]
pub enum KeyPoint<'a, C: PrimeCurveParams> {
    /// A key's precomputed table.
    Table(&'a Table<C, KEY_ROW>),
    /// The key point, multiplied without precomputation.
    Point(&'a ProjectivePoint<C>),
}

/// a·G + b·Q.
fn lincomb<C>(a: &C::Scalar, b: &C::Scalar, q: KeyPoint<'_, C>) -> ProjectivePoint<C>
where
    C: FastCurve,
{
    let mut acc = match q {
        KeyPoint::Table(t) => {
            let mut acc = ProjectivePoint::<C>::IDENTITY;
            t.mul_add(b, &mut acc);
            acc
        }
        KeyPoint::Point(p) => *p * *b,
    };
    C::g_table().mul_add(a, &mut acc);
    acc
}

/// r or s from the 64-byte r ‖ s signature, if it is in [1, n-1].
fn sig_scalar<C: PrimeCurveParams>(bytes: &[u8]) -> Result<C::Scalar, VerifyError> {
    let mut repr = FieldBytes::<C>::default();
    repr.copy_from_slice(bytes);
    let k: Option<C::Scalar> = C::Scalar::from_repr(repr).into();
    k.filter(|k| !bool::from(k.is_zero()))
        .ok_or(VerifyError::MalformedSignature)
}

/// e = the digest as a big-endian integer, reduced mod n.
fn digest_scalar<C: PrimeCurveParams>(digest: &[u8; 32]) -> C::Scalar {
    let mut bytes = FieldBytes::<C>::default();
    bytes.copy_from_slice(digest);
    <C::Scalar as Reduce<C::Uint>>::reduce_bytes(&bytes)
}

/// x(P) mod n, or `None` for the point at infinity.
fn x_mod_n<C: PrimeCurveParams>(p: &ProjectivePoint<C>) -> Option<C::Scalar> {
    let affine = p.to_affine();
    if bool::from(affine.is_identity()) {
        return None;
    }
    Some(<C::Scalar as Reduce<C::Uint>>::reduce_bytes(&affine.x()))
}

/// SM2 verification (GB/T 32918.2 §7.1) of `signature` = r ‖ s over the digest e.
///
/// s·G + t·Q at infinity is rejected (it has no x coordinate; the `sm2` crate takes x = 0).
pub fn verify_sm2<C>(
    q: KeyPoint<'_, C>,
    digest: &[u8; 32],
    signature: &[u8; 64],
) -> Result<(), VerifyError>
where
    C: FastCurve,
{
    let r = sig_scalar::<C>(&signature[..32])?;
    let s = sig_scalar::<C>(&signature[32..])?;
    let e = digest_scalar::<C>(digest);
    let t = r + s;
    if bool::from(t.is_zero()) {
        return Err(VerifyError::Mismatch);
    }
    match x_mod_n(&lincomb(&s, &t, q)) {
        Some(x) if e + x == r => Ok(()),
        _ => Err(VerifyError::Mismatch),
    }
}

/// ECDSA verification of `signature` = r ‖ s over a 32-byte prehash (taken as the `ecdsa`
/// crate does: e = the digest as a big-endian integer, reduced mod n).
pub fn verify_ecdsa<C>(
    q: KeyPoint<'_, C>,
    digest: &[u8; 32],
    signature: &[u8; 64],
) -> Result<(), VerifyError>
where
    C: FastCurve,
    C::Scalar: Invert<Output = CtOption<C::Scalar>>,
{
    let r = sig_scalar::<C>(&signature[..32])?;
    let s = sig_scalar::<C>(&signature[32..])?;
    let e = digest_scalar::<C>(digest);
    // Variable time is fine for public data (the `ecdsa` crate does the same).
    let w: Option<C::Scalar> = Invert::invert_vartime(&s).into();
    let w = w.ok_or(VerifyError::MalformedSignature)?;
    match x_mod_n(&lincomb(&(e * w), &(r * w), q)) {
        Some(x) if x == r => Ok(()),
        _ => Err(VerifyError::Mismatch),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_bytes(limbs_be: [u64; 4]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, l) in limbs_be.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&l.to_be_bytes());
        }
        out
    }

    /// Σ dᵢ·2^(w·i) as an i128 pair is awkward; check on the low 64 bits and the digit range.
    #[test]
    fn recode_reconstructs_and_stays_in_range() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for w in 1..=8usize {
            for _ in 0..200 {
                let mut limbs = [0u64; 4];
                for l in limbs.iter_mut() {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    *l = x;
                }
                let bytes = scalar_bytes(limbs);
                let digits = recode(&bytes, w);
                let half = 1i32 << (w - 1);
                // Reconstruct exactly in base 2^32 with signed carries.
                let mut acc = [0i128; 10];
                for (i, &d) in digits.iter().enumerate().take(BITS / w + 1) {
                    assert!(d as i32 <= half && d as i32 > -half, "w={w} d={d}");
                    let pos = i * w;
                    acc[pos / 32] += (d as i128) << (pos % 32);
                }
                let mut carry = 0i128;
                let mut words = [0u32; 10];
                for (k, a) in acc.iter().enumerate() {
                    let v = a + carry;
                    words[k] = v.rem_euclid(1 << 32) as u32;
                    carry = v.div_euclid(1 << 32);
                }
                assert_eq!(carry, 0);
                assert_eq!(&words[8..], &[0, 0]);
                for k in 0..8 {
                    let limb = limbs[3 - k / 2];
                    let expect = (limb >> (32 * (k % 2))) as u32;
                    assert_eq!(words[k], expect, "w={w} word {k}");
                }
            }
        }
    }

    #[test]
    fn table_multiples_match_scalar_multiplication() {
        let random = |seed: u64| {
            let b = scalar_bytes([seed, seed.rotate_left(17), !seed, seed ^ 0xA5A5]);
            <sm2::Scalar as Reduce<sm2::U256>>::reduce_bytes(&b.into())
        };
        let q = ProjectivePoint::<sm2::Sm2>::GENERATOR * random(0x1234_5678_9ABC_DEF1);
        let table = Table::<sm2::Sm2, KEY_ROW>::new(&q);
        assert_eq!(
            table.heap_size(),
            52 * 16 * std::mem::size_of::<sm2::AffinePoint>()
        );
        assert!(table.heap_size() <= 60 * 1024, "{}", table.heap_size());
        for k in [
            sm2::Scalar::ZERO,
            sm2::Scalar::ONE,
            -sm2::Scalar::ONE,
            random(0x0FED_CBA9_8765_4321),
        ] {
            let mut acc = ProjectivePoint::IDENTITY;
            table.mul_add(&k, &mut acc);
            assert_eq!(acc, q * k);
            let mut acc = ProjectivePoint::IDENTITY;
            sm2::Sm2::g_table().mul_add(&k, &mut acc);
            assert_eq!(acc, ProjectivePoint::GENERATOR * k);
        }
    }
}
