//! Arithmetic in GF(2^8) and the RAID 6 syndromes built on it, as Linux md
//! computes them: the field is GF(2)[x] modulo x^8 + x^4 + x^3 + x^2 + 1
//! (0x11d), the generator is g = 2, and over the data chunks D_0 … D_{k-1}
//! of a stripe
//!
//! ```text
//! P = D_0 ⊕ D_1 ⊕ … ⊕ D_{k-1}
//! Q = g^0·D_0 ⊕ g^1·D_1 ⊕ … ⊕ g^{k-1}·D_{k-1}
//! ```
//!
//! Any two lost chunks among the data, P and Q can be rebuilt from the rest
//! ([`recover`]). Coefficients repeat after 255 data chunks, which bounds a
//! RAID 6 group's width.

/// The field's reducing polynomial, x^8 + x^4 + x^3 + x^2 + 1.
const POLY: u16 = 0x11d;

/// Most data chunks a stripe with a Q syndrome can have: g^i is distinct
/// for i < 255.
pub const MAX_DATA: usize = 255;

struct Tables {
    /// `exp[i] = g^i`, doubled so that `exp[log a + log b]` needs no modulo.
    exp: [u8; 512],
    /// `log[a]` with `g^log[a] = a` (`log[0]` is unused).
    log: [u8; 256],
}

const fn tables() -> Tables {
    let mut exp = [0u8; 512];
    let mut log = [0u8; 256];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        exp[i] = x as u8;
        log[x as usize] = i as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= POLY;
        }
        i += 1;
    }
    while i < 512 {
        exp[i] = exp[i - 255];
        i += 1;
    }
    Tables { exp, log }
}

static TABLES: Tables = tables();

/// a · b.
pub fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        return 0;
    }
    TABLES.exp[TABLES.log[a as usize] as usize + TABLES.log[b as usize] as usize]
}

/// The inverse of `a`; 0 has none and maps to 0.
pub fn inv(a: u8) -> u8 {
    if a == 0 {
        return 0;
    }
    TABLES.exp[255 - TABLES.log[a as usize] as usize]
}

/// g^i.
pub fn exp2(i: usize) -> u8 {
    TABLES.exp[i % 255]
}

/// `dst ^= src` (over the shorter of the two), eight bytes at a time.
pub fn xor_into(dst: &mut [u8], src: &[u8]) {
    let n = dst.len().min(src.len());
    let (dst, src) = (&mut dst[..n], &src[..n]);
    let mut d8 = dst.chunks_exact_mut(8);
    let mut s8 = src.chunks_exact(8);
    for (d, s) in (&mut d8).zip(&mut s8) {
        let x = u64::from_ne_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
            ^ u64::from_ne_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]);
        d.copy_from_slice(&x.to_ne_bytes());
    }
    for (d, s) in d8.into_remainder().iter_mut().zip(s8.remainder()) {
        *d ^= s;
    }
}

/// `dst ^= c · src`, bytewise.
pub fn mul_xor_into(dst: &mut [u8], c: u8, src: &[u8]) {
    match c {
        0 => {}
        1 => xor_into(dst, src),
        _ => {
            let lc = TABLES.log[c as usize] as usize;
            let mut row = [0u8; 256];
            for (x, r) in row.iter_mut().enumerate().skip(1) {
                *r = TABLES.exp[lc + TABLES.log[x] as usize];
            }
            for (d, s) in dst.iter_mut().zip(src) {
                *d ^= row[*s as usize];
            }
        }
    }
}

/// `buf = c · buf`, bytewise.
pub fn mul_in_place(buf: &mut [u8], c: u8) {
    match c {
        0 => buf.fill(0),
        1 => {}
        _ => {
            let lc = TABLES.log[c as usize] as usize;
            for b in buf.iter_mut() {
                if *b != 0 {
                    *b = TABLES.exp[lc + TABLES.log[*b as usize] as usize];
                }
            }
        }
    }
}

/// `buf = g · buf`, eight bytes at a time.
fn mul2_in_place(buf: &mut [u8]) {
    let mut words = buf.chunks_exact_mut(8);
    for w in &mut words {
        let v = u64::from_ne_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
        let high = (v >> 7) & 0x0101_0101_0101_0101;
        let v = ((v & 0x7f7f_7f7f_7f7f_7f7f) << 1) ^ (high * (POLY as u64 & 0xff));
        w.copy_from_slice(&v.to_ne_bytes());
    }
    for b in words.into_remainder() {
        *b = (*b << 1) ^ if *b & 0x80 != 0 { POLY as u8 } else { 0 };
    }
}

/// P of `data` (all the same length as `p`) into `p`.
pub fn p_syndrome(data: &[&[u8]], p: &mut [u8]) {
    // The first chunk copied rather than XORed into zeros: one pass less.
    match data.split_first() {
        Some((first, rest)) if first.len() >= p.len() => {
            p.copy_from_slice(&first[..p.len()]);
            for d in rest {
                xor_into(p, d);
            }
        }
        _ => {
            p.fill(0);
            for d in data {
                xor_into(p, d);
            }
        }
    }
}

/// Q of `data` into `q`, leaving out (as if zero) the chunks `skip` says.
/// Horner's rule: Q = ((D_{k-1}·g ⊕ D_{k-2})·g ⊕ …)·g ⊕ D_0.
fn q_partial(data: &[&[u8]], skip: impl Fn(usize) -> bool, q: &mut [u8]) {
    q.fill(0);
    for j in (0..data.len()).rev() {
        mul2_in_place(q);
        if !skip(j) {
            xor_into(q, data[j]);
        }
    }
}

/// Q of `data` into `q`.
pub fn q_syndrome(data: &[&[u8]], q: &mut [u8]) {
    q_partial(data, |_| false, q);
}

/// Why [`recover`] could not rebuild the lost chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unrecoverable;

/// Rebuilds the data chunks listed in `lost` (at most two, distinct, each
/// below `data.len()`) in place from the others and whichever of `p` and
/// `q` survive. One lost chunk needs P or Q; two need both. Every buffer
/// has the same length.
pub fn recover(
    data: &mut [Vec<u8>],
    lost: &[usize],
    p: Option<&[u8]>,
    q: Option<&[u8]>,
) -> Result<(), Unrecoverable> {
    let k = data.len();
    if lost.iter().any(|&x| x >= k) || k > MAX_DATA {
        return Err(Unrecoverable);
    }
    match (lost, p, q) {
        ([], _, _) => Ok(()),
        (&[x], Some(p), _) => {
            // D_x = P ⊕ (every other D).
            let mut out = p.to_vec();
            for (j, d) in data.iter().enumerate() {
                if j != x {
                    xor_into(&mut out, d);
                }
            }
            data[x] = out;
            Ok(())
        }
        (&[x], None, Some(q)) => {
            // g^x·D_x = Q ⊕ (Q of the others).
            let mut out = vec![0u8; q.len()];
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            q_partial(&refs, |j| j == x, &mut out);
            xor_into(&mut out, q);
            mul_in_place(&mut out, inv(exp2(x)));
            data[x] = out;
            Ok(())
        }
        (&[x, y], Some(p), Some(q)) if x != y => {
            // With P' = D_x ⊕ D_y and Q' = g^x·D_x ⊕ g^y·D_y (P and Q less
            // the surviving chunks): D_x = (g^y·P' ⊕ Q') / (g^x ⊕ g^y),
            // D_y = P' ⊕ D_x.
            let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
            let mut pxy = p.to_vec();
            for (j, d) in refs.iter().enumerate() {
                if j != x && j != y {
                    xor_into(&mut pxy, d);
                }
            }
            let mut qxy = vec![0u8; q.len()];
            q_partial(&refs, |j| j == x || j == y, &mut qxy);
            xor_into(&mut qxy, q);
            let denom = inv(exp2(x) ^ exp2(y));
            let mut dx = vec![0u8; p.len()];
            mul_xor_into(&mut dx, mul(exp2(y), denom), &pxy);
            mul_xor_into(&mut dx, denom, &qxy);
            xor_into(&mut pxy, &dx);
            data[x] = dx;
            data[y] = pxy;
            Ok(())
        }
        _ => Err(Unrecoverable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Multiplication the slow way: shift and add, reducing as we go.
    fn slow_mul(mut a: u8, mut b: u8) -> u8 {
        let mut out = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                out ^= a;
            }
            let carry = a & 0x80 != 0;
            a <<= 1;
            if carry {
                a ^= POLY as u8;
            }
            b >>= 1;
        }
        out
    }

    fn chunks(k: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
        let mut x = seed | 1;
        (0..k)
            .map(|_| {
                (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect()
            })
            .collect()
    }

    fn pq(data: &[Vec<u8>]) -> (Vec<u8>, Vec<u8>) {
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let mut p = vec![0u8; data[0].len()];
        let mut q = vec![0u8; data[0].len()];
        p_syndrome(&refs, &mut p);
        q_syndrome(&refs, &mut q);
        (p, q)
    }

    #[test]
    fn the_tables_agree_with_shift_and_add() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                assert_eq!(mul(a, b), slow_mul(a, b), "{a} * {b}");
            }
            if a != 0 {
                assert_eq!(mul(a, inv(a)), 1, "inverse of {a}");
            }
        }
        assert_eq!(inv(0), 0);
        // g generates the whole multiplicative group.
        let mut seen = [false; 256];
        for i in 0..255 {
            seen[exp2(i) as usize] = true;
        }
        assert!(seen[1..].iter().all(|s| *s) && !seen[0]);
        assert_eq!(exp2(255), 1);
    }

    #[test]
    fn doubling_eight_bytes_at_a_time_matches_the_tables() {
        let mut buf: Vec<u8> = (0..=255u8).chain(0..=20).collect();
        let want: Vec<u8> = buf.iter().map(|b| mul(*b, 2)).collect();
        mul2_in_place(&mut buf);
        assert_eq!(buf, want);
        let mut buf: Vec<u8> = (0..=255u8).collect();
        let want: Vec<u8> = buf.iter().map(|b| mul(*b, 0x53)).collect();
        mul_in_place(&mut buf, 0x53);
        assert_eq!(buf, want);
        let mut acc = vec![7u8; 256];
        let src: Vec<u8> = (0..=255u8).collect();
        mul_xor_into(&mut acc, 0x8e, &src);
        let want: Vec<u8> = src.iter().map(|b| 7 ^ mul(*b, 0x8e)).collect();
        assert_eq!(acc, want);
    }

    #[test]
    fn q_is_the_sum_of_g_to_the_j_times_d_j() {
        let data = chunks(5, 37, 9);
        let (_, q) = pq(&data);
        for i in 0..37 {
            let want = (0..5).fold(0u8, |acc, j| acc ^ mul(exp2(j), data[j][i]));
            assert_eq!(q[i], want);
        }
    }

    #[test]
    fn any_one_or_two_lost_data_chunks_come_back() {
        for k in 1..=8 {
            let data = chunks(k, 100, k as u64 * 77);
            let (p, q) = pq(&data);
            for x in 0..k {
                for (pp, qq) in [(Some(&p[..]), None), (None, Some(&q[..]))] {
                    let mut d = data.clone();
                    d[x] = vec![0xaa; 100];
                    recover(&mut d, &[x], pp, qq).unwrap();
                    assert_eq!(d, data, "k {k} lost {x}");
                }
                for y in 0..k {
                    if x == y {
                        continue;
                    }
                    let mut d = data.clone();
                    d[x].fill(0x55);
                    d[y].fill(0x11);
                    recover(&mut d, &[x, y], Some(&p), Some(&q)).unwrap();
                    assert_eq!(d, data, "k {k} lost {x} and {y}");
                    // Two lost and one syndrome gone: beyond RAID 6.
                    assert_eq!(recover(&mut d, &[x, y], Some(&p), None), Err(Unrecoverable));
                }
            }
        }
    }

    #[test]
    fn wide_stripes_recover_at_the_far_end() {
        let data = chunks(MAX_DATA, 3, 5);
        let (p, q) = pq(&data);
        let mut d = data.clone();
        d[0].fill(0);
        d[MAX_DATA - 1].fill(0);
        recover(&mut d, &[MAX_DATA - 1, 0], Some(&p), Some(&q)).unwrap();
        assert_eq!(d, data);
        let mut d = data.clone();
        d[200].fill(0);
        recover(&mut d, &[200], None, Some(&q)).unwrap();
        assert_eq!(d, data);
        assert_eq!(
            recover(&mut d, &[MAX_DATA], Some(&p), None),
            Err(Unrecoverable)
        );
    }
}
