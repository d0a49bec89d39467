//! Exact non-negative decimals, so prices never pass through a float.

use std::fmt;

/// `m / 10^s`, non-negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Dec {
    pub(super) m: u128,
    pub(super) s: u32,
}

impl Dec {
    pub(super) const fn new(m: u128, s: u32) -> Dec {
        Dec { m, s }
    }

    /// Plain decimal text: `3`, `3.75`, `0.000003`. No sign, no exponent.
    pub(super) fn parse(t: &str) -> Option<Dec> {
        let (int, frac) = t.split_once('.').unwrap_or((t, ""));
        if int.is_empty()
            || !int.bytes().all(|c| c.is_ascii_digit())
            || !frac.bytes().all(|c| c.is_ascii_digit())
        {
            return None;
        }
        if t.contains('.') && frac.is_empty() {
            return None;
        }
        let mut m: u128 = 0;
        for c in int.bytes().chain(frac.bytes()) {
            m = m.checked_mul(10)?.checked_add(u128::from(c - b'0'))?;
        }
        Some(
            Dec {
                m,
                s: u32::try_from(frac.len()).ok()?,
            }
            .normalized(),
        )
    }

    /// The exact decimal that Rust prints for `f`: the shortest text that
    /// reads back as the same float, which is what LiteLLM's authors typed.
    #[cfg(any(test, feature = "litellm"))]
    pub(super) fn from_f64(f: f64) -> Option<Dec> {
        if !f.is_finite() || f < 0.0 {
            return None;
        }
        Dec::parse(&format!("{f}"))
    }

    fn normalized(mut self) -> Dec {
        while self.s > 0 {
            let (q, r) = (self.m / 10, self.m % 10);
            if r != 0 {
                break;
            }
            self.m = q;
            self.s -= 1;
        }
        if self.m == 0 {
            self.s = 0;
        }
        self
    }

    pub(super) fn mul(self, o: Dec) -> Dec {
        // Prices are tiny integers scaled by small powers of ten: no overflow.
        Dec {
            m: self.m * o.m,
            s: self.s + o.s,
        }
        .normalized()
    }

    /// Multiplies by 10^k.
    #[cfg(any(test, feature = "litellm"))]
    pub(super) fn shift(self, k: u32) -> Dec {
        if self.s >= k {
            Dec {
                m: self.m,
                s: self.s - k,
            }
        } else {
            Dec {
                m: self.m * 10u128.pow(k - self.s),
                s: 0,
            }
        }
    }

    /// The value in units of 10^-scale, if it is a whole number of them.
    pub(super) fn to_units(self, scale: u32) -> Option<u128> {
        let d = self.normalized();
        if d.s > scale {
            return None;
        }
        d.m.checked_mul(10u128.checked_pow(scale - d.s)?)
    }
}

impl fmt::Display for Dec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.normalized();
        if d.s == 0 {
            return write!(f, "{}", d.m);
        }
        let p = 10u128.pow(d.s);
        write!(f, "{}.{:0width$}", d.m / p, d.m % p, width = d.s as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pricing::MTOK_SCALE;

    #[test]
    fn decimals_are_exact() {
        for (f, s) in [
            (3e-06, "0.000003"),
            (3.75e-06, "0.00000375"),
            (1.5625e-05, "0.000015625"),
            (5e-09, "0.000000005"),
        ] {
            assert_eq!(Dec::from_f64(f).unwrap().to_string(), s);
        }
        assert_eq!(Dec::from_f64(3e-06).unwrap().shift(6).to_string(), "3");
        assert_eq!(Dec::from_f64(3e-07).unwrap().shift(6).to_string(), "0.3");
        assert_eq!(Dec::parse("0.30"), Some(Dec::new(3, 1)));
        assert_eq!(
            Dec::parse("3.75")
                .unwrap()
                .mul(Dec::new(125, 2))
                .to_string(),
            "4.6875"
        );
        for bad in ["", ".5", "5.", "-1", "1e-6", "1.2.3", " 1"] {
            assert_eq!(Dec::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            Dec::parse("0.0000000000001").unwrap().to_units(MTOK_SCALE),
            None
        );
    }
}
