//! Durations written in policy files: `30s`, `5m`, `1h30m`, `500ms`, `2d`.

use std::time::Duration;

/// Parses a duration such as `1h30m`; the error says what is wrong.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; write e.g. \"30s\", \"5m\" or \"1h30m\"".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{text}`: expected a number at `{rest}`"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}`: number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let seconds_per_unit: Option<u64> = match unit {
            "ms" => None,
            "s" => Some(1),
            "m" => Some(60),
            "h" => Some(3600),
            "d" => Some(86_400),
            "" => return Err(format!("`{text}`: missing unit (ms, s, m, h or d)")),
            other => {
                return Err(format!(
                    "`{text}`: unknown unit `{other}` (ms, s, m, h or d)"
                ));
            }
        };
        let part = match seconds_per_unit {
            None => Duration::from_millis(number),
            Some(factor) => number
                .checked_mul(factor)
                .map(Duration::from_secs)
                .ok_or_else(|| format!("`{text}`: duration too large"))?,
        };
        total = total
            .checked_add(part)
            .ok_or_else(|| format!("`{text}`: duration too large"))?;
    }
    if total.is_zero() {
        return Err(format!("`{text}`: duration must be greater than zero"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_parse_compound_units() {
        let ok = [
            ("5m", 300_000),
            ("30s", 30_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("2d", 172_800_000),
        ];
        for (text, millis) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
    }

    #[test]
    fn durations_reject_garbage() {
        for bad in [
            "",
            "5",
            "m",
            "5 minutes",
            "5x",
            "0s",
            "-5m",
            "99999999999999999999d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should not parse");
        }
    }
}
