//! Numbers as MariaDB prints them: DOUBLE and FLOAT in `my_gcvt`'s shortest
//! form (`1e300`, `0.00001`, `1.2345678901234568e17`; FLOAT with six
//! significant digits), DECIMAL text at a declared scale.

use std::fmt::Write;

/// `plain` (a decimal string) with exactly `scale` fractional digits, rounded
/// half away from zero as MySQL rounds DECIMAL. Non-numbers pass unchanged.
pub fn rescale(plain: &str, scale: u8) -> String {
    let (neg, body) = match plain.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, plain),
    };
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return plain.to_string();
    }
    let scale = usize::from(scale);
    let mut digits: Vec<u8> = int.bytes().chain(frac.bytes().take(scale)).collect();
    digits.extend(std::iter::repeat_n(b'0', scale.saturating_sub(frac.len())));
    let mut int_len = int.len();
    if frac.as_bytes().get(scale).is_some_and(|&d| d >= b'5') {
        let mut i = digits.len();
        loop {
            if i == 0 {
                digits.insert(0, b'1');
                int_len += 1;
                break;
            }
            i -= 1;
            if digits[i] == b'9' {
                digits[i] = b'0';
            } else {
                digits[i] += 1;
                break;
            }
        }
    }
    let (i, f) = digits.split_at(int_len);
    let mut i = std::str::from_utf8(i)
        .unwrap_or("0")
        .trim_start_matches('0');
    if i.is_empty() {
        i = "0";
    }
    let f = std::str::from_utf8(f).unwrap_or("");
    let zero = i == "0" && f.bytes().all(|b| b == b'0');
    let mut s = String::with_capacity(i.len() + f.len() + 2);
    if neg && !zero {
        s.push('-');
    }
    s.push_str(i);
    if !f.is_empty() {
        s.push('.');
        s.push_str(f);
    }
    s
}

/// A DOUBLE as MariaDB prints it: the shortest digits that read back as the
/// same value, in fixed notation unless the exponent is below -15 or above 15.
pub fn push_double(out: &mut String, x: f64) {
    if !x.is_finite() {
        return push_non_finite(out, x);
    }
    let e = format!("{:e}", x.abs());
    push_gcvt(out, x.is_sign_negative(), &e);
}

/// A FLOAT as MariaDB prints it: at most 6 significant digits (FLT_DIG).
pub fn push_float(out: &mut String, x: f32) {
    if !x.is_finite() {
        return push_non_finite(out, f64::from(x));
    }
    let wide = f64::from(x.abs());
    let mut e = format!("{wide:e}");
    if e.split('e')
        .next()
        .is_some_and(|m| m.replace('.', "").len() > 6)
    {
        e = format!("{wide:.5e}");
    }
    push_gcvt(out, x.is_sign_negative(), &e);
}

fn push_non_finite(out: &mut String, x: f64) {
    out.push_str(if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    });
}

/// Formats `d.ddde±x` (Rust's LowerExp of a positive value) the way MariaDB's
/// `my_gcvt` does for a wide field.
fn push_gcvt(out: &mut String, negative: bool, exp_form: &str) {
    let (mantissa, exp) = exp_form.split_once('e').unwrap_or((exp_form, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    while digits.len() > 1 && digits.ends_with('0') {
        digits.pop();
    }
    if negative {
        out.push('-');
    }
    if digits == "0" {
        out.push('0');
        return;
    }
    // dtoa's decpt: the decimal point sits after `decpt` digits.
    let decpt = exp + 1;
    let len = digits.len() as i32;
    if decpt >= -14 && (decpt <= 15 || len > decpt) {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-decpt) as usize));
            out.push_str(&digits);
        } else if decpt < len {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        } else {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (decpt - len) as usize));
        }
    } else {
        out.push_str(&digits[..1]);
        if len > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(out, "e{}", decpt - 1);
    }
}
